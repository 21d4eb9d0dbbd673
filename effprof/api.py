"""The Python API behind the commands: profile one point, sweep a grid."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from effprof.config import ConfigError, resolve_config
from effprof.measure.harness import Options, measure_point
from effprof.registry import MODES, get_spec, list_mechanisms

if TYPE_CHECKING:
    import pandas

# The mechanisms `effprof compare` measures when none are named: one per family, where registered.
DEFAULT_COMPARE = ("softmax_attention", "linear_attention", "mamba", "mamba2", "sliding_window", "moe_topk")
DEFAULT_VARY = {"seq_len": [256, 512, 1024, 2048]}
DEFAULT_MODES = ("forward", "decode")  # prefill cost and the per-token decode cost beside it


def pattern_panels(frame: "pandas.DataFrame") -> list[dict[str, Any]]:
    """Attention-pattern heatmaps (as HTML divs) for the sparse mechanisms in `frame`, at small n."""
    try:
        from effprof.mechanisms.sparse.pattern import pattern_data
        from effprof.render.patterns import pattern_figure
    except ImportError:
        return []
    panels = []
    sparse = frame[frame["family"] == "sparse"] if "family" in frame.columns else frame.iloc[0:0]
    for name in dict.fromkeys(sparse["mechanism"]):
        if name not in list_mechanisms():
            continue  # results from a plugin or another effprof version
        data = pattern_data(name, seq_len=PATTERN_SEQ_LEN)
        div = pattern_figure(data).to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
        panels.append({"name": name, "n": data["n"], "density": data["density"], "div": div})
    return panels


PATTERN_SEQ_LEN = 256


def default_compare() -> list[str]:
    registered = set(list_mechanisms())
    return [n for n in DEFAULT_COMPARE if n in registered]


def profile(name: str, mode: str = "forward", options: Options = Options(), **config: Any) -> dict[str, Any]:
    ((_, _, overrides),) = plan([name], {}, [mode], config)  # validates, and resolves NAME.key params
    return measure_point(name, mode, overrides, options)


def machine_bytes(device: str) -> int:
    """Memory of the device a point runs on: physical RAM, or the GPU's total memory."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def estimated_bytes(spec, config: dict[str, Any], mode: str) -> float:
    """A rough upper estimate of a point's memory, from its cost model, to refuse absurd sizes up front.

    The spec's own estimate (Cost.extra["peak_bytes"]) where it gives one; otherwise a dozen
    activations of (batch, seq_len, d_model) — three times that in train mode — plus the decode state.
    """
    from effprof.analytic import BYTES

    cost = spec.cost(config, mode)
    activations = 12 * config["batch"] * (config["seq_len"] + config["gen_len"]) * config["d_model"] * BYTES[config["dtype"]]
    estimate = cost.extra.get("peak_bytes", activations)
    return (3 if mode == "train" else 1) * estimate + 2 * cost.state_bytes


def plan(names: Iterable[str], vary: dict[str, list[Any]], modes: Iterable[str], config: dict[str, Any],
         force: bool = False) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (name, mode, overrides) point of a sweep, each validated before anything runs.

    A point whose estimated memory exceeds the device's is refused unless `force`.
    """
    names, modes = list(names), list(modes)
    if any(":" in name for name in names):  # module factories: registered and probed with these values first
        from effprof.modules import resolve_targets

        names = resolve_targets(names, [], [], config)
    if not names:
        raise ConfigError("no mechanism to measure; accepted: " + ", ".join(list_mechanisms()))
    for key, values in vary.items():
        if not values:
            raise ConfigError(f"--vary {key} has no values; give at least one, e.g. {key}=256,512")
    for mode in modes:
        if mode not in MODES:
            raise ConfigError(f"mode={mode!r} is not a mode; accepted: {', '.join(MODES)}")
    points = []
    keys = list(vary)
    for scoped in (k for k in config if "." in k):  # NAME.key; NAME may hold dots (hf:llama.attention.window)
        if scoped.rpartition(".")[0] not in names:
            raise ConfigError(f"--param {scoped!r} names {scoped.rpartition('.')[0]!r}, which is not measured here; accepted prefixes: {', '.join(names)}")
    for name in names:
        spec = get_spec(name)
        own = {k: v for k, v in config.items() if "." not in k}
        own.update({k.rpartition(".")[2]: v for k, v in config.items() if k.rpartition(".")[0] == name and "." in k})
        for mode in modes:
            if mode not in spec.modes:
                continue  # e.g. decode of a non-causal mechanism: not applicable, not an error
            for values in itertools.product(*(vary[k] for k in keys)):
                overrides = {**own, **dict(zip(keys, values))}
                resolved = resolve_config(spec, overrides)  # raises ConfigError naming the bad value
                if not force:
                    need, have = estimated_bytes(spec, resolved, mode), machine_bytes(resolved["device"])
                    if need > have:
                        sizes = ", ".join(f"{k}={resolved[k]}" for k in ("batch", "seq_len", "d_model"))
                        raise ConfigError(
                            f"{name} {mode} at {sizes} would need about {need / 2**30:.0f} GiB, more than this "
                            f"{resolved['device']} has ({have / 2**30:.0f} GiB); use smaller sizes, or --force to try anyway")
                points.append((name, mode, overrides))
    if not points:
        raise ConfigError(f"no point to measure: none of {', '.join(names)} supports mode {', '.join(modes)}")
    return points


@dataclass(frozen=True)
class Isolation:
    """Run each point in a worker subprocess (--isolate) with these limits."""

    timeout_s: float | None = None
    max_memory: int | None = None  # bytes of address space (CPU)


def run_points(
    points: list[tuple[str, str, dict[str, Any]]],
    options: Options = Options(),
    output: str | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    isolation: Isolation | None = None,
) -> list[dict[str, Any]]:
    """Measure each point in order; append each record to `output` as soon as it is measured.

    SIGTERM is turned into KeyboardInterrupt, like Ctrl-C: the point in flight is
    dropped (never half-written) and every finished record is already on disk.
    """
    from effprof import records as store
    from effprof.measure.isolate import IsolatedRunner

    results = []
    runner = IsolatedRunner(options, isolation.timeout_s, isolation.max_memory) if isolation else None
    with _sigterm_as_interrupt():
        try:
            for name, mode, overrides in points:
                record = runner.measure(name, mode, overrides) if runner else measure_point(name, mode, overrides, options)
                if output:
                    store.append(output, record)
                results.append(record)
                if on_record:
                    on_record(record)
        finally:
            if runner:
                runner.close()
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
    from effprof.records import point_identity

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
    **config: Any,
) -> "pandas.DataFrame":
    from effprof.records import to_frame

    names = [names] if isinstance(names, str) else names
    modes = [mode] if isinstance(mode, str) else mode
    return to_frame(run_points(plan(names, vary, modes, config), options, output))
