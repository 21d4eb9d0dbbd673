"""Records: one typed dict per measured point (`Record`), stored as JSON Lines.

The store is append-only: each record is written as one line, flushed and
fsynced as soon as it is measured, so an interrupted sweep loses nothing that
finished. Reading skips a truncated or corrupt line with a warning naming it,
and converts records of older schemas to this one (`upgrade`).
`to_frame` turns records into a pandas DataFrame for fitting and rendering.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypedDict

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
    status: str  # ok | oom | timeout | error | unsupported | crash (STATUSES)
    error: str  # one line: why the point failed ("" when ok)
    seed: int  # seed of the weights and inputs
    measured_by: str  # run (executed, timed) | count (count-only: shapes on fake tensors, nothing run or timed; time_s empty)
    assumptions: str  # "; "-separated assumptions a count rests on where shapes depend on data (count-only), e.g. balanced expert load
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
    cpu_count: int  # cores — logical CPUs of the machine (load_avg_1m at or above this: busy, metrics.is_busy)
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
    breakdown: dict[str, dict[str, Any]]  # per submodule path ("" the whole): {type, calls, flops, time_s, peak_bytes}
    analytic_peak_bytes: float  # bytes — the cost model's own memory estimate, where it gives one
    # diagnostics (MoE routing, diffusion samplers), where the mechanism reports them
    aux_loss: float  # load-balancing loss (Switch: f over the T·k assignments), 1 when balanced
    aux_loss_hf: float  # the same loss as Mixtral / Hugging Face compute it (f per token): top_k × aux_loss
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
    cpu_model: str  # the CPU's marketing name (/proc/cpuinfo)
    hostname: str  # the machine that measured the point
    node_id: str  # the Ray node that measured it (--executor ray)
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


class StoreError(OSError):
    """A record could not be appended (disk full, file system gone read-only); `filename` names the file."""


def json_ready(value: Any) -> Any:
    """`value` as plain JSON data: numpy scalars and arrays to Python numbers and lists, NaN/inf to None,
    recursively through dicts, lists and tuples (the one converter for records, sessions and --json output)."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays and scalars
        value = value.tolist()
        if isinstance(value, list):
            return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


STATUSES = ("ok", "oom", "timeout", "error", "unsupported", "crash")

# Fields a reader relies on, with the JSON types each may hold (None: the field may be null).
# Numbers that sizes or rates divide by must be positive where present.
_TEXT_FIELDS = ("mechanism", "mode")
_OPTIONAL_TEXT_FIELDS = ("family", "status", "error")
_NUMBER_FIELDS = (
    "flops_analytic", "flops_counted", "flops_fvcore", "time_s", "time_iqr_s", "time_reps", "peak_bytes",
    "activation_bytes", "state_bytes", "params", "state_bytes_analytic", "bytes_moved", "arithmetic_intensity",
    "achieved_flops_per_s", "load_avg_1m", "cpu_count", "time_blocks", "fraction_of_peak",
)  # all of them counts, sizes or durations: never negative
_POSITIVE_FIELDS = ("peak_flops_per_s", "peak_bytes_per_s")
_NUMBER_SET, _POSITIVE_SET = frozenset(_NUMBER_FIELDS), frozenset(_POSITIVE_FIELDS)


def validate_record(record: Any) -> str | None:
    """Why `record` (one parsed JSON line) cannot be used as an effprof record, or None when it can.

    Checks the types every reader relies on, so that a crafted or damaged file is skipped record by record
    instead of failing later with a traceback: text where names belong, numbers where figures belong,
    positive integers for every size key, claims as [metric, axis, exponent(, log_power)] lists.
    """
    from effprof.config import KEYS

    if not isinstance(record, dict):
        return "not a JSON object"
    for field in _TEXT_FIELDS:
        if not isinstance(record.get(field), str) or not record[field]:
            return f"{field} is {_shown(record.get(field))}, not a name"
    for field in _OPTIONAL_TEXT_FIELDS:
        if record.get(field) is not None and not isinstance(record[field], str):
            return f"{field} is {_shown(record[field])}, not text"
    if record.get("status") is not None and record["status"] not in STATUSES:
        return f"status {_shown(record['status'])} is not one of {', '.join(STATUSES)}"
    present = record.keys()  # only the fields a record carries are checked (100k records are read in seconds)
    for field in present & _NUMBER_SET:
        value = record[field]
        if value is not None and not is_number(value):
            return f"{field} is {_shown(value)}, not a number"
        if value is not None and value < 0:
            return f"{field} is {value!r}; it cannot be negative"
    for field in present & _POSITIVE_SET:
        value = record[field]
        if value is not None and not is_number(value):
            return f"{field} is {_shown(value)}, not a number"
        if value is not None and not value > 0:
            return f"{field} is {value!r}; it must be positive"
    for key in present & KEYS.keys():
        info, value = KEYS[key], record[key]
        if value is None:
            continue
        if info.type is int and (not is_number(value) or float(value) != int(value)):
            return f"{key} is {_shown(value)}, not a whole number"
        if info.type is float and not is_number(value):
            return f"{key} is {_shown(value)}, not a number"
        if info.type is str and not isinstance(value, str):
            return f"{key} is {_shown(value)}, not text"
        if info.type is int and info.positive and value <= 0:
            return f"{key} is {value!r}; it must be a positive integer"
    for field in ("time_samples_s", "expert_load"):
        values = record.get(field)
        if values is not None and (not isinstance(values, list) or not all(is_number(v) and v >= 0 for v in values)):
            return f"{field} is {_shown(values)}, not a list of non-negative numbers"
    for field in ("layer_kinds", "breakdown"):  # nested figures: {name: {figure: number}}
        nested = record.get(field)
        if nested is None:
            continue
        if not isinstance(nested, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in nested.items()):
            return f"{field} is {_shown(nested)}, not a table of tables"
        for inner in nested.values():
            for name, value in inner.items():
                if value is not None and not isinstance(value, str) and not (is_number(value) and value >= 0):
                    return f"{field} holds {name} = {_shown(value)}, not a non-negative number"
    complexity = record.get("complexity")
    if complexity is not None and (not isinstance(complexity, dict) or not all(isinstance(v, str) for v in complexity.values())):
        return f"complexity is {_shown(complexity)}, not a table of texts"
    claims = record.get("claims")
    if claims is not None:
        if not isinstance(claims, list):
            return f"claims is {_shown(claims)}, not a list"
        for claim in claims:
            if (not isinstance(claim, list) or len(claim) not in (3, 4) or not all(isinstance(c, str) for c in claim[:2])
                    or not all(is_number(c) for c in claim[2:])):
                return f"claim {_shown(claim)} is not [metric, axis, exponent, log_power]"
    return None


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool): the one test of "a figure is there" (is_missing is its converse for frames)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _valid_unicode(record: dict[str, Any]) -> bool:
    """False when a JSON escape (\\ud800) left a lone surrogate in some string: no output can encode it."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"key {repeated[0]!r} appears twice")
    return dict(pairs)


def _encode(record: dict[str, Any]) -> str:
    return json.dumps(json_ready(record), default=str)  # NaN as null at every depth (layer_kinds, breakdown, samples)


def append(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line, flushed and fsynced.

    A file whose last line has no newline was cut mid-write (disk full, power loss, SIGKILL): that half line
    is moved into `<file>.corrupt` (with a warning) before the record is appended, so the new record is never
    glued onto it. A last line that is a whole record and lacks only its newline is kept and ended.
    """
    line = _encode(record) + "\n"
    try:
        with open(path, "a+b", buffering=0) as f:
            set_aside_unterminated_line(f, Path(path))
            size = f.seek(0, os.SEEK_END)
            data = memoryview(line.encode("utf-8"))
            try:
                while data:
                    data = data[os.write(f.fileno(), data):]
                os.fsync(f.fileno())
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(f.fileno(), size)  # a full disk leaves no half line behind
                raise
    except StoreError:
        raise
    except OSError as e:
        raise StoreError(e.errno, e.strerror or str(e), str(path)) from e


def set_aside_unterminated_line(f: IO[bytes], path: Path) -> None:
    """Truncate a last line without a newline off the open file `f`, saving it to `<path>.corrupt`."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return
    start = size
    while start > 0:  # find the start of the last line, reading backwards a block at a time
        block = min(65536, start)
        f.seek(start - block)
        chunk = f.read(block)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            start = start - block + cut + 1
            break
        start -= block
    f.seek(start)
    fragment = f.read()
    if _whole_record(fragment):  # only its newline was lost: end the line, keep the record
        f.write(b"\n")
        return
    side = path.with_name(path.name + ".corrupt")
    with open(side, "ab") as corrupt:
        corrupt.write(fragment + b"\n")
        corrupt.flush()
        os.fsync(corrupt.fileno())
    f.truncate(start)
    f.flush()
    os.fsync(f.fileno())
    warnings.warn(f"{path}: its last line was cut off mid-write ({len(fragment)} bytes); "
                  f"moved it to {side} before appending", stacklevel=3)


def _whole_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def read(path: str | Path) -> list[dict[str, Any]]:
    """Every valid record in a JSON Lines file; each bad line is skipped with a warning naming its number.

    A UTF-8 byte-order mark is ignored; a line that is not JSON, is nested too deeply, repeats a key, comes
    from another schema version or fails `validate_record` is skipped, and the rest of the file is read.
    """
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"results file {str(path)!r} does not exist")
    if path.is_dir():
        raise ResultsError(f"results file {str(path)!r} is a directory; expected a .jsonl file")
    records = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ResultsError(f"results file {str(path)!r} cannot be read: {e}") from None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_refuse_duplicate_keys)
        except RecursionError:
            warnings.warn(f"{path}:{number}: skipped a line nested too deeply to be a record", stacklevel=2)
            continue
        except ValueError as e:  # JSONDecodeError is a ValueError, so is a repeated key
            reason = "a corrupt or truncated line" if isinstance(e, json.JSONDecodeError) else f"a line whose {e}"
            warnings.warn(f"{path}:{number}: skipped {reason}", stacklevel=2)
            continue
        if not isinstance(record, dict) or "mechanism" not in record or "mode" not in record:
            warnings.warn(f"{path}:{number}: skipped a line that is not an effprof record", stacklevel=2)
            continue
        if ("\\ud" in line or "\\uD" in line) and not _valid_unicode(record):
            warnings.warn(f"{path}:{number}: skipped a record holding text that is not valid Unicode (a lone surrogate)",
                          stacklevel=2)
            continue
        version = record.get("schema", 1)
        if version not in (1, SCHEMA_VERSION):
            warnings.warn(f"{path}:{number}: skipped a record of schema {_shown(version)}; this effprof reads schemas "
                          f"1 to {SCHEMA_VERSION}", stacklevel=2)
            continue
        record = upgrade(record, f"{path}:{number}")
        reason = validate_record(record)
        if reason is not None:
            warnings.warn(f"{path}:{number}: skipped a record whose {reason}", stacklevel=2)
            continue
        records.append(record)
    return records


def to_frame(records: Iterable[dict[str, Any]]) -> pandas.DataFrame:
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
    """Write records to `path` atomically: through a unique temporary file in its folder, renamed into place."""
    with atomic_writer(path) as f:
        for record in records:
            f.write(_encode(record) + "\n")


@contextlib.contextmanager
def atomic_writer(path: str | Path) -> Iterator[IO[str]]:
    """Open a text file that replaces `path` only once everything was written and fsynced.

    The temporary file is created with mkstemp in the target folder (a unique name, never a pre-planted
    file or symlink followed), and removed on every failure; `path` keeps its old content until the rename.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)  # a symlink at `path` is replaced itself, never written through
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
