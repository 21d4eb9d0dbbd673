"""Records: one typed dict per measured point (`Record`), stored as JSON Lines.

The store is append-only: each record is written as one line, flushed and
fsynced as soon as it is measured, so an interrupted sweep loses nothing that
finished. Reading skips a truncated or corrupt line with a warning naming it,
and converts records of older schemas to this one (`upgrade`).
`to_frame` turns records into a pandas DataFrame for fitting and rendering.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
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
    field, resolved to the value that ran (impl as asked: the form that ran is impl_resolved). Figures of decode records are per generated token.
    Absent or None: not measured (e.g. a failed point, or timing switched off)."""

    schema: int  # SCHEMA_VERSION of the effprof that wrote it
    mechanism: str  # registered name
    family: str  # attention, linear_attention, ssm, sparse, moe, hybrid, diffusion
    mode: str  # forward | train | decode
    status: str  # ok | oom | timeout | error | unsupported | crash (STATUSES)
    error: str  # one line: why the point failed ("" when ok)
    warnings: list[str]  # one line each: torch settings the mechanism's code changed, restored (runtime/guard.py)
    seed: int  # seed of the weights and inputs
    # impl is as asked; with impl=auto (the default where a mechanism has a faster form that runs only at some
    # points, as mamba's compiled scan) these say which form ran and why
    impl_resolved: str  # the impl that ran: impl itself, or what impl=auto resolved to at this point
    impl_reason: str  # impl=auto only: why that form (the fastest here, or what kept the faster one from running)
    measured_by: str  # run (executed, timed) | count (count-only: shapes on fake tensors, nothing run or timed; time_s empty)
    assumptions: str  # "; "-separated assumptions a count rests on where shapes depend on data (count-only), e.g. balanced expert load
    # FLOPs (a multiply-add is 2 FLOPs; ARCHITECTURE.md § FLOP convention)
    flops_analytic: float  # FLOPs — the spec's cost model
    flops_counted: float  # FLOPs — counted at the op dispatcher
    flops_fvcore: float  # FLOPs — fvcore's count in this convention; None where fvcore cannot trace
    fvcore_note: str  # why fvcore gave no figure or a partial one
    uncounted_ops: str  # comma-separated ops with no FLOP formula (counted as 0)
    custom_ops: str  # comma-separated compiled kernels that ran
    bytes_moved: float  # bytes — read + written by the counted ops
    arithmetic_intensity: float  # FLOP/byte — flops_counted / bytes_moved
    # compiled variants (config key compile, --compile; measure/compile.py): FLOPs above are the eager module's
    compile_time_s: float  # seconds — the first call of the compiled workload: compilation plus one run (cold)
    graph_breaks: int  # times torch._dynamo broke the graph while compiling
    graph_break_reasons: str  # the distinct reasons, '; '-separated
    compile_error: str  # why torch.compile failed (status error)
    # time (torch.utils.benchmark blocks after warm-up; per generated token in decode)
    time_s: float  # seconds — median per call
    time_iqr_s: float  # seconds — interquartile range per call
    time_reps: int  # calls measured
    time_blocks: int  # timed blocks (each a number of calls)
    time_samples_s: list[float]  # seconds — per-call time of each timed block (the raw samples)
    time_noisy: bool  # IQR / median > 10%: metrics.is_noisy_timing, the rule every reader applies to time_s and time_iqr_s
    load_avg_1m: float  # runnable tasks — the machine's 1-minute load average when the point was measured
    cpu_count: int  # cores — logical CPUs of the machine (load_avg_1m at or above this: busy, metrics.is_busy)
    achieved_flops_per_s: float  # FLOP/s — flops_counted / time_s
    peak_flops_per_s: float  # FLOP/s — the machine's measured matmul peak
    peak_bytes_per_s: float  # bytes/s — the machine's measured bandwidth beyond the caches (STREAM triad, measure.roofline)
    fraction_of_peak: float  # achieved_flops_per_s / peak_flops_per_s
    # the roofline (effprof.hardware.model: the model and why each term; measure.roofline: the ceilings)
    ops: dict[str, dict[str, float]]  # per aten op dispatched: {flops: FLOPs, bytes: bytes read + written, calls} per call
    bandwidth_in_cache_bytes_per_s: float  # bytes/s — the machine's best measured bandwidth (a working set in cache)
    dispatch_overhead_s: float  # seconds — the machine's measured fixed cost of one dispatched op
    roofline_bound_s: float  # seconds — the model's lower bound: Σ over ops of max(FLOPs/peak, bytes/bandwidth) + overhead·calls
    roofline_compute_s: float  # seconds — the part of the bound spent in compute-limited ops
    roofline_memory_s: float  # seconds — the part of the bound spent in memory-limited ops
    roofline_overhead_s: float  # seconds — the dispatch overhead of the ops' calls
    roofline_limit: str  # compute | memory | overhead: the largest of the three parts
    roofline_fraction: float  # roofline_bound_s / time_s: the achieved fraction of the bound (1 = at the bound)
    projected_time_s: float  # seconds — a roofline projection onto --hardware (a lower bound under its assumptions, not a measurement)
    projected_limit: str  # compute | memory: which roof limits the projection
    projected_hardware: str  # the --hardware entry projected onto
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
    if value is None or type(value) in _PLAIN:
        return value
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
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):  # analysis.FrameRecords
        return [json_ready(v) for v in value]
    return value


_PLAIN = frozenset({str, int, bool})


STATUSES = ("ok", "oom", "timeout", "error", "unsupported", "crash")

# Fields a reader relies on, with the JSON types each may hold (None: the field may be null).
# Numbers that sizes or rates divide by must be positive where present.
_TEXT_FIELDS = ("mechanism", "mode")
_OPTIONAL_TEXT_FIELDS = ("family", "status", "error", "graph_break_reasons", "compile_error", "impl_resolved", "impl_reason")
_NUMBER_FIELDS = (
    "flops_analytic", "flops_counted", "flops_fvcore", "time_s", "time_iqr_s", "time_reps", "peak_bytes",
    "activation_bytes", "state_bytes", "params", "state_bytes_analytic", "bytes_moved", "arithmetic_intensity",
    "achieved_flops_per_s", "load_avg_1m", "cpu_count", "time_blocks", "fraction_of_peak", "compile_time_s", "graph_breaks", "dispatch_overhead_s",
    "roofline_bound_s", "roofline_compute_s", "roofline_memory_s", "roofline_overhead_s", "roofline_fraction", "projected_time_s",
)  # all of them counts, sizes or durations: never negative
_POSITIVE_FIELDS = ("peak_flops_per_s", "peak_bytes_per_s", "bandwidth_in_cache_bytes_per_s")
_LIMIT_FIELDS = ("roofline_limit", "projected_limit")  # one of LIMITS where present
LIMITS = ("compute", "memory", "overhead")  # = effprof.hardware.model.LIMITS
_NUMBER_SET, _POSITIVE_SET = frozenset(_NUMBER_FIELDS), frozenset(_POSITIVE_FIELDS)


def validate_record(record: Any) -> str | None:
    """Why `record` (one parsed JSON line) cannot be used as an effprof record, or None when it can.

    Checks the types every reader relies on, so that a crafted or damaged file is skipped record by record
    instead of failing later with a traceback: text where names belong, numbers where figures belong,
    positive integers for every size key, claims as [metric, axis, exponent(, log_power)] lists.
    Each check takes a fast path for the common valid value (a finite non-negative float, a list of them)
    and falls back to the full test only to name what is wrong (100k records validate in about a second).
    """
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
    present = record.keys()  # only the fields a record carries are checked
    for field in present & _NUMBER_SET:
        value = record[field]
        if value is None or (type(value) is float and 0.0 <= value < math.inf) or (type(value) is int and 0 <= value < _EXACT):
            continue
        if not is_number(value):
            return f"{field} is {_shown(value)}, not a number"
        if value < 0:
            return f"{field} is {value!r}; it cannot be negative"
    for field in present & _POSITIVE_SET:
        value = record[field]
        if value is not None and not is_number(value):
            return f"{field} is {_shown(value)}, not a number"
        if value is not None and not value > 0:
            return f"{field} is {value!r}; it must be positive"
    keys = _config_keys()
    for key in present & keys.keys():
        info, value = keys[key], record[key]
        if value is None or (type(value) is int and info.type is int and -_EXACT < value < _EXACT and (value > 0 or not info.positive)):
            continue
        if info.type is int and (not is_number(value) or float(value) != int(value)):
            return f"{key} is {_shown(value)}, not a whole number"
        if info.type is float and not is_number(value):
            return f"{key} is {_shown(value)}, not a number"
        if info.type is str and not isinstance(value, str):
            return f"{key} is {_shown(value)}, not text"
        if info.type is int and info.positive and value <= 0:
            return f"{key} is {value!r}; it must be a positive integer"
    notes = record.get("warnings")
    if notes is not None and (not isinstance(notes, list) or not all(isinstance(n, str) for n in notes)):
        return f"warnings is {_shown(notes)}, not a list of texts"
    for field in ("time_samples_s", "expert_load"):
        values = record.get(field)
        if values is not None and not _non_negative_numbers(values):
            return f"{field} is {_shown(values)}, not a list of non-negative numbers"
    for field in _LIMIT_FIELDS:
        if record.get(field) is not None and record[field] not in LIMITS:
            return f"{field} is {_shown(record[field])}, not one of {', '.join(LIMITS)}"
    for field in ("layer_kinds", "breakdown", "ops"):  # nested figures: {name: {figure: number}}
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
            if (type(claim) is list and len(claim) == 4 and type(claim[0]) is str and type(claim[1]) is str
                    and type(claim[2]) is float and type(claim[3]) is float and -math.inf < claim[2] + claim[3] < math.inf):
                continue  # the common valid claim (a finite sum: neither number is NaN or infinite)
            if not _is_claim(claim):
                return f"claim {_shown(claim)} is not [metric, axis, exponent, log_power]"
    return None


def _is_claim(claim: Any) -> bool:
    """[metric, axis, exponent(, log_power)]: two texts, then one or two numbers."""
    if not isinstance(claim, list) or len(claim) not in (3, 4) or not isinstance(claim[0], str) or not isinstance(claim[1], str):
        return False
    for value in claim[2:]:
        if not is_number(value):
            return False
    return True


def _config_keys() -> dict[str, Any]:
    from effprof.config import KEYS  # config imports nothing of records; imported late to keep this module light

    return KEYS


def _non_negative_numbers(values: Any) -> bool:
    """A list of finite numbers ≥ 0 (not bools). Fast path: only floats whose sum is finite (so none is NaN or
    infinite) and whose least is ≥ 0; otherwise (ints, an overflowing sum) each value is tested."""
    if not isinstance(values, list):
        return False
    if not values:
        return True
    if _FLOAT_ONLY.issuperset(map(type, values)) and math.isfinite(sum(values)) and min(values) >= 0:
        return True
    return all(is_number(v) and v >= 0 for v in values)


_FLOAT_ONLY = {float}


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool): the one test of "a figure is there" (is_missing is its converse for frames).
    An integer too large for a float (JSON allows 400 digits) is not a figure: no reader could use it."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


_EXACT = 2**53  # integers below this in magnitude are exact as floats


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


_KEY_END = re.compile(r'"[ \t\n\r]*:')  # where a key's closing quote meets its colon


def _loads_record(line: str) -> Any:
    """json.loads of one line, refusing an object that repeats a key (ValueError), as _refuse_duplicate_keys does.

    Fast path: the C parser, then a proof that no key repeats. Every key written in the line is followed by one
    colon (after its closing quote and optional whitespace); any other colon lies inside a string. So the line's
    colons, and more narrowly its quote-colon marks, number at least the keys written, which number at least the
    keys the parsed objects hold, with equality only when no key repeats. Where neither count equals the keys held
    (a repeat, or strings holding such marks) the line is parsed again with the hook, which names the repeated key.
    """
    value = json.loads(line)
    held = len(value) if isinstance(value, dict) and line.count("{") == 1 else _count_keys(value)
    if line.count(":") == held or len(_KEY_END.findall(line)) == held:
        return value
    return json.loads(line, object_pairs_hook=_refuse_duplicate_keys)


def _count_keys(value: Any) -> int:
    """Keys held by every object in a parsed JSON value (a stack, not recursion: any depth json accepts)."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, (dict, list)))
    return count


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):  # the common case costs one dict; only a repeat looks for which key
        keys = [k for k, _ in pairs]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"key {repeated[0]!r} appears twice")
    return record


def encode(record: dict[str, Any]) -> str:
    """One record as the JSON line `append` writes (without its newline): NaN as null, numpy values as Python's."""
    return json.dumps(json_ready(record), default=str)  # NaN as null at every depth (layer_kinds, breakdown, samples)


def append(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line, flushed and fsynced.

    A file whose last line has no newline was cut mid-write (disk full, power loss, SIGKILL): that half line
    is moved into `<file>.corrupt` (with a warning) before the record is appended, so the new record is never
    glued onto it. A last line that is a whole record and lacks only its newline is kept and ended.
    """
    line = encode(record) + "\n"
    try:
        with os.fdopen(open_regular(path, write=True), "a+b", buffering=0) as f:  # no FIFO, no symlink followed
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
    side = corrupt_path(path)
    try:
        fd = open_regular(side, write=True)
    except NotRegularFile:  # a planted symlink or FIFO: never written through, never waited on; the line goes beside it
        fd, name = tempfile.mkstemp(prefix=side.name + ".", dir=side.parent)
        warnings.warn(f"{side} is not a regular file (a symbolic link, FIFO or device): the cut line goes to {name} instead",
                      stacklevel=3)
        side = Path(name)
    with os.fdopen(fd, "ab") as corrupt:
        corrupt.write(fragment + b"\n")
        corrupt.flush()
        os.fsync(corrupt.fileno())
    f.truncate(start)
    f.flush()
    os.fsync(f.fileno())
    warnings.warn(f"{path}: its last line was cut off mid-write ({len(fragment)} bytes); "
                  f"moved it to {side} before appending", stacklevel=3)


def corrupt_path(path: str | Path) -> Path:
    """Where the cut-off last line of a results file goes: `<results>.corrupt` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".corrupt")


def _whole_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def read(path: str | Path) -> list[dict[str, Any]]:
    """Every valid record in a JSON Lines file, as dicts; each bad line is skipped with a warning naming its number
    (iter_records). For analysis, read_frame keeps the same records as columns, in far less memory."""
    return list(iter_records(path))


def iter_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """The valid records of a JSON Lines file, one at a time, read as a stream (a line in memory, not the file).

    A UTF-8 byte-order mark is ignored; a line that is not JSON, is nested too deeply, repeats a key, comes
    from another schema version or fails `validate_record` is skipped with a warning naming its line number, and
    the rest of the file is read. A FIFO or device is refused without blocking (open_regular).
    """
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"results file {str(path)!r} does not exist")
    if path.is_dir():
        raise ResultsError(f"results file {str(path)!r} is a directory; expected a .jsonl file")
    try:
        f = os.fdopen(open_regular(path), "r", encoding="utf-8-sig", newline="\n")
    except OSError as e:
        raise ResultsError(f"results file {str(path)!r} cannot be read: {getattr(e, 'strerror', None) or e}") from None
    with f:
        try:
            for number, line in enumerate(f, start=1):
                record = _parse_line(line, path, number)
                if record is not None:
                    yield record
        except (OSError, UnicodeDecodeError) as e:
            raise ResultsError(f"results file {str(path)!r} cannot be read: {e}") from None


def _parse_line(line: str, path: Path, number: int) -> dict[str, Any] | None:
    """The record on one line, upgraded and validated; None (with a warning naming the line) when it is not one."""
    if not line.strip():
        return None
    try:
        record = _loads_record(line)
    except RecursionError:
        warnings.warn(f"{path}:{number}: skipped a line nested too deeply to be a record", stacklevel=4)
        return None
    except ValueError as e:  # JSONDecodeError is a ValueError, so is a repeated key (and an integer of 4300+ digits)
        reason = "a corrupt or truncated line" if isinstance(e, json.JSONDecodeError) else f"a line whose {e}"
        warnings.warn(f"{path}:{number}: skipped {reason}", stacklevel=4)
        return None
    if not isinstance(record, dict) or "mechanism" not in record or "mode" not in record:
        warnings.warn(f"{path}:{number}: skipped a line that is not an effprof record", stacklevel=4)
        return None
    if ("\\ud" in line or "\\uD" in line) and not _valid_unicode(record):
        warnings.warn(f"{path}:{number}: skipped a record holding text that is not valid Unicode (a lone surrogate)", stacklevel=4)
        return None
    version = record.get("schema", 1)
    if version not in (1, SCHEMA_VERSION):
        warnings.warn(f"{path}:{number}: skipped a record of schema {_shown(version)}; this effprof reads schemas "
                      f"1 to {SCHEMA_VERSION}", stacklevel=4)
        return None
    record = upgrade(record, f"{path}:{number}")
    reason = validate_record(record)
    if reason is not None:
        warnings.warn(f"{path}:{number}: skipped a record whose {reason}", stacklevel=4)
        return None
    return record


def read_frame(path: str | Path) -> pandas.DataFrame:
    """The valid records of a JSON Lines file as a DataFrame built column by column (one row per record, a column
    per field, NaN where a record lacks it): the same frame as to_frame(read(path)), without holding every record
    as a dict (each is dropped once its values are in the columns; repeated texts and claim lists are stored once)."""
    import pandas as pd

    columns: dict[str, list[Any]] = {}
    shared: dict[Any, Any] = {}  # one object per distinct name, mode, status, claims list ... (100k records, a few dozen)
    rows = 0
    for record in iter_records(path):
        for key in record:
            if key not in columns:
                columns[key] = [_ABSENT] * rows
        for key, column in columns.items():
            value = record.get(key, _ABSENT)
            if type(value) is str:
                value = shared.setdefault(value, value)
            elif key in _SHARED_LISTS and isinstance(value, (list, dict)):
                value = shared.setdefault((key, repr(value)), value)  # repr tells 2 from 2.0 and True from 1, as JSON does
            column.append(value)
        rows += 1
    frame = pd.DataFrame({key: _column(values) for key, values in columns.items()}, index=pd.RangeIndex(rows))
    return frame


_SHARED_LISTS = frozenset({"claims", "complexity"})  # the spec's, identical in every record of a mechanism


def _column(values: list[Any]) -> Any:
    """A column as pandas infers it from records (to_frame): NaN where a record lacks the field, None where it holds
    null; numbers become float64 or int64 arrays here, so their Python objects are freed at once."""
    import numpy as np

    kinds = set(map(type, values))
    numbers = kinds & {int, float}
    if numbers and kinds <= {int, float, type(None), _Absent}:
        if kinds == {int}:
            try:
                return np.array(values, dtype=np.int64)
            except OverflowError:
                return values
        return np.array([v if type(v) in numbers else np.nan for v in values], dtype=np.float64)
    if _Absent in kinds:
        return [np.nan if v is _ABSENT else v for v in values]
    return values


class _Absent:
    """A field a record lacks (NaN in its frame), unlike one it holds as null (None)."""


_ABSENT = _Absent()


def to_frame(records: Iterable[dict[str, Any]]) -> pandas.DataFrame:
    import pandas as pd

    return pd.DataFrame(list(records))


def point_identity(record: dict[str, Any]) -> str:
    """Which point a record measured: its mechanism, mode and every config key it carries.

    The one definition of "the same point" for --resume, merge, baseline comparison and check.
    """
    from effprof.config import KEYS

    config = {k: plain_value(record[k]) for k in KEYS if k in record and not is_missing(record[k])
              and not (k == "compile" and record[k] == "none")}  # eager: the same point as a record from before the key
    return json.dumps([record.get("mechanism"), record.get("mode"), config], sort_keys=True, default=str)


def is_missing(value: Any) -> bool:
    """A key absent from a record shows as NaN (or None) in a DataFrame row of mixed mechanisms."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def plain_value(value: Any) -> Any:
    """A config value as its record wrote it: 2.0 in a DataFrame column (with gaps) is the 2 of its record, a numpy
    scalar the Python one. The one normaliser: point identity here, series keys in analyse."""
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
            f.write(encode(record) + "\n")


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


class NotRegularFile(OSError):
    """A path that is a FIFO, socket, device, directory or (for writing) a symbolic link: effprof never reads,
    appends to or writes through one."""


def open_regular(path: str | Path, write: bool = False) -> int:
    """A file descriptor of the regular file `path`: the one way effprof opens a file it reads, or appends to.

    Never blocks: a FIFO is opened non-blocking and refused, as is a socket, device or directory (NotRegularFile).
    For appending (write=True) the file is created if missing and a symbolic link at `path` is refused, never
    followed (O_NOFOLLOW). Whole files are written by atomic_writer, which replaces a link and never follows it.
    """
    flags = os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    flags |= (os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW) if write else os.O_RDONLY
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        if write and os.path.islink(path):
            raise NotRegularFile(e.errno, "is a symbolic link; effprof does not write through one", str(path)) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, "is not a regular file (a FIFO, socket, device or directory)", str(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of the bytes of the regular file `path`: the content hash a session keeps of the results it was made from."""
    import hashlib

    digest = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
