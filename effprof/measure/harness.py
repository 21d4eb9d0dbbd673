"""One point -> one Record (records.Record: the fields, their units and meaning).

Order of work for a point, so that nothing is timed under instrumentation:
  build (fixed seed) -> analytic cost -> counted FLOPs (FlopCounter) -> fvcore
  -> peak memory (tracker) -> activation bytes (train) -> decode state bytes
  -> diagnostics -> wall time (no dispatch mode active).
The machine's load (1-minute load average, core count) is read as the point starts,
so a noisy timing can be told apart from a busy machine.
A failure (out of memory, an error in the mechanism, sys.exit in its code) becomes a record with its
status and message; config errors are raised before anything is measured. Torch's global settings the
mechanism's code changes (grad mode, threads, default dtype, ...) are put back after its build and after
the point, each change named in the record's `warnings` (runtime/guard.py).
"""

from __future__ import annotations

import contextlib
import traceback
from dataclasses import dataclass, replace
from typing import Any

import torch

from effprof.config import MAX_THREADS, MAX_TIME_S, resolve_config
from effprof.hardware.model import bound, op_counts
from effprof.measure.compile import CompileFailed, is_compiled
from effprof.measure.env import environment
from effprof.measure.flops import FlopCounter
from effprof.measure.fvcore_count import fvcore_flops
from effprof.measure.memory import LiveTensorTracker, activation_bytes, peak_bytes
from effprof.measure.roofline import machine_ceilings
from effprof.measure.timing import time_call
from effprof.measure.workload import make_workload
from effprof.mechanisms.base import provides, state_nbytes
from effprof.registry import MODES, build, get_spec, resolve_impl
from effprof.runtime.guard import user_code
from effprof.store.records import SCHEMA_VERSION, Record
from effprof.suggest import one_line

ERROR_CHARS = 500  # a record's `error`: the exception's text on one line, this long at most


@dataclass(frozen=True)
class Options:
    """How a point is measured (not what): these never change the function computed.

    Checked when made (the CLI's flags and the Python API share these limits): ConfigError names the bad value.
    """

    threads: int = 0  # 0: torch's current setting
    max_time_s: float = 1.0  # time budget of the timing loop
    count_flops: bool = True
    fvcore: bool = True
    memory: bool = True
    timing: bool = True
    roofline: bool = True  # measure the machine's peak FLOP/s and bandwidth (once per process)
    seed: int = 0
    breakdown: bool = False  # forward mode: FLOPs, time, peak memory per submodule (measure/breakdown.py)
    breakdown_depth: int | None = None  # levels of submodules kept; None: all
    count_only: bool = False  # shapes only (runtime/counting.py): FLOPs, bytes, params, state, memory; no time

    def __post_init__(self) -> None:
        from effprof.config import ConfigError
        from effprof.store.records import is_number

        low, high = MAX_TIME_S
        if not is_number(self.max_time_s) or not low <= self.max_time_s <= high:
            raise ConfigError(f"max_time={self.max_time_s!r} is not a number of seconds from {low:g} to {high:g}")
        if not _is_int(self.threads) or not 0 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"threads={self.threads!r} is not a whole number from 0 (torch's default) to {MAX_THREADS}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} is not a whole number >= 0")
        if self.breakdown_depth is not None and (not _is_int(self.breakdown_depth) or self.breakdown_depth < 1):
            raise ConfigError(f"depth={self.breakdown_depth!r} is not a whole number >= 1 (or None: every level)")
        for name in ("count_flops", "fvcore", "memory", "timing", "roofline", "breakdown", "count_only"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} is not True or False")


def _is_int(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


MODE_FREE_METRICS = ("state_bytes", "params")  # the same quantity whatever the mode measured


def applicable_claims(spec, config: dict[str, Any], mode: str) -> list[list[Any]]:
    """The spec's claims for this mode and config, as [metric, axis, exponent, log_power]."""
    return [
        [c.metric, c.axis, c.exponent, c.log_power]
        for c in spec.claims
        if (c.mode == mode or c.metric in MODE_FREE_METRICS) and c.applies_to(config)
    ]


def measure_point(name: str, mode: str, config: dict[str, Any], options: Options = Options()) -> Record:
    """Measure mechanism `name` in `mode` at `config` (overrides of its defaults)."""
    spec, resolved = check_point(name, mode, config)
    threads = options.threads or torch.get_num_threads()
    record = _base_record(spec, resolved, mode, threads, options)
    changes: list[str] = []  # torch settings the mechanism's code changed (runtime/guard.py), restored
    try:
        with user_code(changes):
            _measure(spec, {**resolved, "impl": record["impl_resolved"]} if "impl_resolved" in record else resolved, mode, options, threads,
                     record, changes)
    except torch.cuda.OutOfMemoryError as e:
        record.update(status="oom", error=one_line(e, ERROR_CHARS))
    except MemoryError as e:
        record.update(status="oom", error=one_line(e, ERROR_CHARS) or "MemoryError")
    except CompileFailed as e:  # torch.compile could not compile this form: the variant has no figures past the counts
        record.update(status="error", error=f"torch.compile failed: {e}", compile_error=str(e))
    except NotImplementedError as e:  # a form that cannot run here (a mode it lacks, or mamba impl=chunked_c with no kernel built)
        record.update(status="unsupported", error=one_line(e, ERROR_CHARS))
    except RuntimeError as e:
        status = "oom" if "out of memory" in str(e).lower() or "can't allocate memory" in str(e).lower() else "error"
        record.update(status=status, error=one_line(e, ERROR_CHARS))
    except Exception as e:  # a bug in one mechanism must not end the sweep
        record.update(status="error", error=f"{type(e).__name__}: {one_line(e, ERROR_CHARS)} [{_where(e)}]")
    finally:
        if is_compiled(resolved):
            torch._dynamo.reset()  # the next point compiles afresh (dynamo's recompile limit would make it eager)
        if resolved["device"].startswith("cuda"):
            torch.cuda.empty_cache()
    if changes:
        record["warnings"] = changes
    return record


def check_point(name: str, mode: str, config: dict[str, Any]):
    """(spec, resolved config) of a point, or ConfigError naming what is wrong."""
    from effprof.config import ConfigError

    spec = get_spec(name)
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is not a mode; accepted: {', '.join(MODES)}")
    resolved = resolve_config(spec, config)
    if mode not in spec.modes:
        raise ConfigError(f"mode={mode!r} is not available for {name} (causal={spec.causal}); accepted: {', '.join(spec.modes)}")
    return spec, resolved


def failed_record(name: str, mode: str, config: dict[str, Any], options: Options, status: str, error: str) -> Record:
    """The record of a point that produced no measurement (timed out, killed)."""
    spec, resolved = check_point(name, mode, config)
    record = _base_record(spec, resolved, mode, options.threads or torch.get_num_threads(), options)
    record.update(status=status, error=error)
    return record


def _base_record(spec, resolved: dict[str, Any], mode: str, threads: int, options: Options) -> Record:
    """The point's record before measuring: config as asked, the form that runs (impl_resolved: impl=auto
    resolved, and impl_reason), the cost model and claims of that form."""
    form: dict[str, str] = {}
    if resolved.get("impl") is not None:
        resolution = resolve_impl(spec, resolved, mode)
        form = {"impl_resolved": resolution.impl, **({"impl_reason": resolution.reason} if resolution.reason else {})}
    runs = {**resolved, "impl": form["impl_resolved"]} if form else resolved
    cost = spec.cost(runs, mode)
    analytic: dict[str, Any] = {}  # the cost model's extras: a stack's figures by layer kind, a memory estimate, ...
    kinds: dict[str, dict[str, Any]] = {}
    for key, value in cost.extra.items():
        for prefix, field in (("flops_", "flops_analytic"), ("state_bytes_", "state_bytes_analytic")):
            if key.startswith(prefix):
                kinds.setdefault(key.removeprefix(prefix), {})[field] = float(value)
                break
        else:
            analytic[f"analytic_{key}"] = float(value)
    return {
        **analytic,
        **({"layer_kinds": kinds} if kinds else {}),
        "schema": SCHEMA_VERSION,
        "mechanism": spec.name,
        "family": spec.family,
        "mode": mode,
        **resolved,
        **form,
        "flops_analytic": cost.flops,
        "state_bytes_analytic": cost.state_bytes,
        "flops_counted": None,
        "flops_fvcore": None,
        "time_s": None,
        "time_iqr_s": None,
        "time_reps": None,
        "peak_bytes": None,
        "activation_bytes": None,
        "state_bytes": None,
        "params": None,
        "claims": applicable_claims(spec, runs, mode),
        "complexity": dict(spec.complexity),
        "status": "ok",
        "error": "",
        "measured_by": "run",
        "seed": options.seed,
        **environment(resolved["device"], threads),
    }


def _measure(spec, config: dict[str, Any], mode: str, options: Options, threads: int, record: dict[str, Any],
             changes: list[str]) -> None:
    if not options.count_only:
        return _run(spec, config, mode, options, threads, record, changes)
    from effprof.runtime import counting as count_only

    record["measured_by"] = "count"
    nothing_timed = replace(options, fvcore=False, timing=False, roofline=False)
    assumptions: list[str] = []
    try:
        with count_only.counting() as assumptions:
            _run(spec, config, mode, nothing_timed, threads, record, changes)
    except count_only.NEEDS_DATA as e:  # an op whose output size depends on values: no count without data
        raise NotImplementedError(f"count-only: {spec.name} {mode} needs data at {e.func if hasattr(e, 'func') else e}; "
                                  "measure it with a real run") from None
    finally:
        if assumptions:
            record["assumptions"] = "; ".join(assumptions)
    record["fvcore_note"] = "count-only: fvcore traces real tensors"


def _run(spec, config: dict[str, Any], mode: str, options: Options, threads: int, record: dict[str, Any],
         changes: list[str]) -> None:
    with user_code(changes):  # what the build changes is put back before anything is measured
        module = build(spec.name, seed=options.seed, **config)
    record["params"] = sum(p.numel() for p in module.parameters())
    work = make_workload(module, config, mode, seed=options.seed)

    together = options.count_only and options.memory  # counting, one pass serves both counters (runs cost no time)
    if options.count_flops:
        with FlopCounter() as counter, (LiveTensorTracker() if together else contextlib.nullcontext()) as tracker:
            work.run()
        if together:
            record["peak_bytes"] = int(tracker.peak)
        record["flops_counted"] = counter.total / work.per_call
        record["bytes_moved"] = counter.bytes_moved / work.per_call
        if counter.bytes_moved:
            record["arithmetic_intensity"] = counter.total / counter.bytes_moved
        if counter.unknown_ops:
            record["uncounted_ops"] = ",".join(sorted(counter.unknown_ops))
        if counter.custom_ops:  # compiled kernels that ran (their torch forms did not)
            record["custom_ops"] = ",".join(sorted(counter.custom_ops))
        record["ops"] = {name: {"flops": f / work.per_call, "bytes": b / work.per_call, "calls": c / work.per_call}
                         for name, (f, b, c) in sorted(counter.ops.items())}
        if options.roofline and options.timing:  # this machine's bound, beside the time it is measured against (an untimed,
            # counted point is projected onto named hardware instead: effprof.hardware.project)
            ceilings = machine_ceilings(config["device"], config["dtype"], threads)
            record.update(ceilings.record_fields())
            record.update(bound(op_counts(record["ops"]), ceilings.roofs()).fields())
    if options.fvcore:
        flops, note = fvcore_flops(spec, module, config, mode, work)
        record["flops_fvcore"] = flops
        if note:
            record["fvcore_note"] = note
    compiled = is_compiled(config)
    if compiled:  # every count above is of the eager module; what follows runs the compiled one
        from effprof.measure.compile import cold_call, compile_in_place

        torch._dynamo.reset()
        compile_in_place(module, mode, config["compile"])
        record.update(cold_call(work.run, config["device"]))
    if options.memory:
        # decode: over all gen_len steps; counting, the dispatcher tracker on every device (fakes allocate nothing)
        if record["peak_bytes"] is None:
            record["peak_bytes"] = peak_bytes(work.run, "cpu" if options.count_only else config["device"])
        if mode == "train":
            x = work.inputs[0]
            exclude = [*module.parameters(), *module.buffers(), *work.inputs]
            forward = module.training_loss if provides(module, "training_loss") else module
            record["activation_bytes"] = activation_bytes(lambda: forward(x), exclude)
    if work.info:  # a sampler's own figures: forward passes for the whole generation, ...
        record.update({k: v for k, v in work.info.items() if k != "state" and isinstance(v, (int, float, str))})
        if record.get("forward_passes"):
            record["tokens_per_pass"] = config["gen_len"] / record["forward_passes"]
    if work.state is not None:
        record["state_bytes"] = state_nbytes(work.state)
        _state_breakdown(module, work.state, record)
    elif spec.causal:  # forward / train records carry the state a prefill of seq_len would leave
        with torch.no_grad():
            _, state = module.prefill(work.inputs[0].detach())
        record["state_bytes"] = state_nbytes(state)
        _state_breakdown(module, state, record)
        del state
    if provides(module, "diagnostics") and not options.count_only:  # of a forward over the whole input, whatever else was measured before
        with torch.no_grad():
            module(work.inputs[0].detach())
        record.update(module.diagnostics())
    if options.breakdown and mode == "forward" and not compiled:  # its hooks would break the compiled graph
        from effprof.measure.breakdown import measure_breakdown

        record["breakdown"] = measure_breakdown(module, work.run, options.breakdown_depth, repeats=0 if options.count_only else 5)
        record["breakdown"][""]["flops_analytic"] = record["flops_analytic"]  # the spec's model, beside the count
    if options.timing and provides(module, "layer_kinds") and mode == "forward" and not compiled:
        for kind, t in time_by_layer_kind(module, work.run).items():
            record.setdefault("layer_kinds", {}).setdefault(kind, {})["time_s"] = t
    if options.timing:
        timing = time_call(work.run, config["device"], threads, options.max_time_s)
        record["time_s"] = timing.median_s / work.per_call
        record["time_iqr_s"] = timing.iqr_s / work.per_call
        record["time_reps"] = timing.reps
        record["time_blocks"] = len(timing.samples_s)
        record["time_samples_s"] = [t / work.per_call for t in timing.samples_s]
        record["time_noisy"] = timing.noisy
    if record.get("time_s") and record.get("flops_counted"):
        record["achieved_flops_per_s"] = record["flops_counted"] / record["time_s"]
        if record.get("peak_flops_per_s"):
            record["fraction_of_peak"] = record["achieved_flops_per_s"] / record["peak_flops_per_s"]
    if record.get("time_s") and record.get("roofline_bound_s"):
        record["roofline_fraction"] = record["roofline_bound_s"] / record["time_s"]


def _state_breakdown(module, state, record: Record) -> None:
    """A stack's decode state by layer kind (KV cache, SSM state, ...) into layer_kinds[kind]["state_bytes"]."""
    if provides(module, "state_breakdown"):
        for kind, n in module.state_breakdown(state).items():
            record.setdefault("layer_kinds", {}).setdefault(kind, {})["state_bytes"] = int(n)


def time_by_layer_kind(module, run, repeats: int = 5) -> dict[str, float]:
    """Median forward time spent in each kind of layer of a stack (module.layer_kinds(): [(kind, submodule)]).

    Measured with forward hooks on a separate pass (never during the main timing); the
    hooks synchronise CUDA so each layer's time is its own.
    """
    import statistics
    import time as clock

    totals: dict[str, list[float]] = {}
    current: dict[str, float] = {}
    starts: dict[int, float] = {}
    handles = []
    sync = torch.cuda.synchronize if next(module.parameters()).is_cuda else (lambda: None)

    def pre(layer, _inputs):
        sync()
        starts[id(layer)] = clock.perf_counter()

    def post_for(kind: str):
        def post(layer, _inputs, _output):
            sync()
            current[kind] = current.get(kind, 0.0) + clock.perf_counter() - starts.pop(id(layer))
        return post

    for kind, layer in module.layer_kinds():
        handles.append(layer.register_forward_pre_hook(pre))
        handles.append(layer.register_forward_hook(post_for(kind)))
    try:
        for _ in range(repeats):
            current.clear()
            run()
            for kind, t in current.items():
                totals.setdefault(kind, []).append(t)
    finally:
        for handle in handles:
            handle.remove()
    return {kind: statistics.median(ts) for kind, ts in totals.items()}


def _where(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)
    if not frames:
        return ""
    f = frames[-1]
    return f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}"

