"""Plan the points of a sweep and run them on an executor: the engine behind the commands and effprof.profile / sweep."""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from effprof.config import ConfigError, resolve_config
from effprof.cost_model import estimated_bytes
from effprof.measure.harness import Options, measure_point
from effprof.registry import MODES, get_spec, list_mechanisms

if TYPE_CHECKING:
    import pandas

    from effprof.executors import Executor

# The mechanisms `effprof compare` measures when none are named: one per family, where registered.
DEFAULT_COMPARE = ("softmax_attention", "linear_attention", "mamba", "mamba2", "sliding_window", "moe_topk")
DEFAULT_VARY = {"seq_len": [256, 512, 1024, 2048]}
DEFAULT_MODES = ("forward", "decode")  # prefill cost and the per-token decode cost beside it


# The largest sweep planned without --force: each point is validated before anything runs, and ten thousand
# points are already hours of measuring.
MAX_POINTS = 10_000


def default_compare() -> list[str]:
    registered = set(list_mechanisms())
    return [n for n in DEFAULT_COMPARE if n in registered]


def profile(name: Any, mode: str = "forward", options: Options = Options(), **config: Any) -> dict[str, Any]:
    """`name`: a registered mechanism, a module target (pkg.mod:factory, hf:...), an nn.Module or a factory."""
    (name,) = targets([name], config)
    ((_, _, overrides),) = plan([name], {}, [mode], config, count_only=options.count_only)  # validates, resolves NAME.key
    return measure_point(name, mode, overrides, options)


def targets(names: Iterable[Any], config: dict[str, Any]) -> list[str]:
    """Names for the Python API's targets: strings as they are; an nn.Module instance or a factory registered
    as a module target (modules/objects.py), probed with `config`'s values."""
    out = []
    for name in names:
        if name is None:
            raise ConfigError("names must be a name or a list of names (a mechanism, a module target, an nn.Module or a factory); got None")
        if isinstance(name, str):
            out.append(name)
        else:
            from effprof.modules.objects import object_target

            out.append(object_target(name, config))
    return out


def options_from(max_time: float = 1.0, threads: int = 0, count_only: bool = False, breakdown: bool = False,
                 depth: int | None = None, seed: int = 0) -> Options:
    """The Python API's measuring options (the CLI's --max-time, --threads, --count-only, --breakdown, --depth), checked
    where every Options is (Options.__post_init__: the same limits as the CLI's)."""
    return Options(threads=threads, max_time_s=max_time, count_only=count_only, breakdown=breakdown, breakdown_depth=depth, seed=seed)


@functools.cache
def machine_bytes(device: str) -> int:
    """Memory of the device a point runs on: physical RAM, or the GPU's total memory (asked once per device,
    not once per planned point)."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def plan(names: Iterable[str], vary: dict[str, list[Any]], modes: Iterable[str], config: dict[str, Any],
         force: bool = False, probe: Callable | None = None, count_only: bool = False) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (name, mode, overrides) point of a sweep, each validated before anything runs.

    Module factory targets are registered first, each probed by `probe` (effprof.modules.module_spec; the
    executor's, so that --isolate builds them in its worker).

    A point whose estimated memory exceeds the device's is refused unless `force` (or `count_only`: a count
    allocates nothing of that size), and so is a grid of more than MAX_POINTS points (counted before any is
    planned), or a point that appears twice.
    """
    from effprof.store.records import point_identity

    names, vary, modes = _checked_arguments(names, vary, modes, config)
    if any(":" in name for name in names):  # module factories: registered and probed with these values first
        from effprof.modules import resolve_targets

        names = resolve_targets(names, [], [], config, probe)
    if not names:
        raise ConfigError("no mechanism to measure; accepted: " + ", ".join(list_mechanisms()))
    for key, values in vary.items():
        if not values:
            raise ConfigError(f"--vary {key} has no values; give at least one, e.g. {key}=256,512")
    for mode in modes:
        if mode not in MODES:
            from effprof.suggest import did_you_mean

            raise ConfigError(f"mode={mode!r} is not a mode{did_you_mean(mode, MODES)}; accepted: {', '.join(MODES)}")
    for key in config:
        if key.rpartition(".")[2] in vary:
            raise ConfigError(f"{key} is both varied (--vary {key.rpartition('.')[2]}=...) and fixed (--param {key}=...); give one")
    size = len(names) * len(modes) * math.prod(len(values) for values in vary.values())
    if size > MAX_POINTS and not force:
        raise ConfigError(f"the sweep has {size} points, more than {MAX_POINTS}; vary fewer values, or pass --force to plan them all")
    points = []
    keys = list(vary)
    for scoped in (k for k in config if "." in k):  # NAME.key; NAME may hold dots (hf:llama.attention.window)
        if scoped.rpartition(".")[0] not in names:
            raise ConfigError(f"--param {scoped!r} names {scoped.rpartition('.')[0]!r}, which is not measured here; accepted prefixes: {', '.join(names)}")
    seen: set[str] = set()
    for name in names:
        spec = get_spec(name)
        own = {k: v for k, v in config.items() if "." not in k}
        own.update({k.rpartition(".")[2]: v for k, v in config.items() if k.rpartition(".")[0] == name and "." in k})
        for mode in modes:
            if mode not in spec.modes:
                continue  # e.g. decode of a non-causal mechanism: not applicable, not an error
            for values in itertools.product(*(vary[k] for k in keys)):
                overrides = {**own, **dict(zip(keys, values, strict=False))}
                resolved = resolve_config(spec, overrides)  # raises ConfigError naming the bad value
                if not force and not count_only:
                    need, have = estimated_bytes(spec, resolved, mode), machine_bytes(resolved["device"])
                    if need > have:
                        sizes = ", ".join(f"{k}={resolved[k]}" for k in ("batch", "seq_len", "d_model"))
                        raise ConfigError(
                            f"{name} {mode} at {sizes} would need about {need / 2**30:.0f} GiB, more than this "
                            f"{resolved['device']} has ({have / 2**30:.0f} GiB); use smaller sizes, or --force to try anyway")
                identity = point_identity({"mechanism": name, "mode": mode, **resolved})
                if identity in seen:
                    shown = ", ".join(f"{k}={resolved[k]}" for k in keys)
                    raise ConfigError(f"{name} {mode} at {shown} is planned twice (values equal once read, e.g. 64 and 064); give each value once")
                seen.add(identity)
                points.append((name, mode, overrides))
    if not points:
        raise ConfigError(f"no point to measure: none of {', '.join(names)} supports mode {', '.join(modes)}")
    return points


def _checked_arguments(names: Any, vary: Any, modes: Any, config: Any) -> tuple[list[str], dict[str, list[Any]], list[str]]:
    """The Python API's arguments as plan reads them, or ConfigError naming the bad one (the CLI's flags arrive checked:
    --vary by effprof.cli.options.parse_vary, the same rules)."""
    from effprof.config import KEYS

    def texts(value: Any, what: str, example: str) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) and v for v in items):
            raise ConfigError(f"{what} must be a name or a list of names, e.g. {example}; got {value!r}")
        return list(items)

    names = texts(names, "names", "['softmax_attention', 'mamba']")
    modes = texts(modes, "mode", "'forward' or ['forward', 'decode']")
    if not isinstance(config, dict):
        raise ConfigError(f"config must be keyword arguments of config keys, e.g. d_model=64; got {config!r}")
    if not isinstance(vary, dict):
        raise ConfigError(f"vary must be a dict of config key -> list of values, e.g. {{'seq_len': [256, 512]}}; got {vary!r}")
    checked: dict[str, list[Any]] = {}
    for key, values in vary.items():
        if key not in KEYS:
            raise ConfigError(f"vary key {key!r} is not a config key; accepted: {', '.join(KEYS)}")
        if hasattr(values, "tolist") and not isinstance(values, (str, bytes)):
            values = values.tolist()  # a numpy array
        if not isinstance(values, (list, tuple, range)):
            raise ConfigError(f"vary {key!r} must be a list of values, e.g. {{'{key}': [256, 512]}}; got {values!r}")
        checked[key] = [v.item() if hasattr(v, "item") and not isinstance(v, (str, bytes)) else v for v in values]  # numpy scalars
    return names, checked, modes


@dataclass(frozen=True)
class Isolation:
    """Run each point in a worker subprocess (--isolate) with these limits."""

    timeout_s: float | None = None
    max_memory: int | None = None  # bytes a point may allocate on the CPU, beyond the worker's footprint
    plugins: tuple[str, ...] = ()  # --plugin targets the worker loads, so plugin mechanisms run isolated too


def run_points(
    points: list[tuple[str, str, dict[str, Any]]],
    options: Options = Options(),
    output: str | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    isolation: Isolation | None = None,
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Measure the points on `executor` (default: in this process, or --isolate's worker with `isolation`);
    append each record to `output` as soon as it arrives (completion order).

    An executor passed in is the caller's to close (it may serve several calls); one made here is closed here.
    SIGTERM is turned into KeyboardInterrupt, like Ctrl-C: the points in flight are dropped (never
    half-written) and every finished record is already on disk.
    """
    from effprof.executors import make_executor
    from effprof.store import records as store

    results = []
    limits = {"timeout_s": isolation.timeout_s, "max_memory": isolation.max_memory, "plugins": isolation.plugins} if isolation else {}
    runner = executor or make_executor("process" if isolation else "local", **limits)
    with _sigterm_as_interrupt(), (contextlib.nullcontext() if executor else runner):
        for record in runner.records(points, options):
            if output:
                store.append(output, record)
            results.append(record)
            if on_record:
                on_record(record)
    return results


@contextlib.contextmanager
def _sigterm_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def pending(points: list[tuple[str, str, dict[str, Any]]], done: Iterable[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """The points with no `ok` record in `done` (matched on mechanism, mode and the whole config)."""
    from effprof.store.records import point_identity

    finished = {point_identity(r) for r in done if r.get("status") == "ok"}
    left = []
    for name, mode, overrides in points:
        resolved = resolve_config(get_spec(name), overrides)
        if point_identity({"mechanism": name, "mode": mode, **resolved}) not in finished:
            left.append((name, mode, overrides))
    return left


def sweep(
    names: list[str] | str,
    vary: dict[str, list[Any]],
    mode: str | list[str] = "forward",
    options: Options = Options(),
    output: str | None = None,
    executor: str | Executor = "local",
    address: str | None = None,
    **config: Any,
) -> pandas.DataFrame:
    """`executor`: local, process or ray (with `address`: auto, ray://host:port, host:port), or an Executor."""
    from effprof.executors import make_executor
    from effprof.store.records import to_frame

    names = targets([names] if isinstance(names, str) or not isinstance(names, (list, tuple)) else names, config)
    modes = [mode] if isinstance(mode, str) else mode
    if not isinstance(executor, str):
        points = plan(names, vary, modes, config, probe=executor.probe, count_only=options.count_only)
        return to_frame(run_points(points, options, output, executor=executor))
    with make_executor(executor, address) as runner:
        points = plan(names, vary, modes, config, probe=runner.probe, count_only=options.count_only)
        return to_frame(run_points(points, options, output, executor=runner))
