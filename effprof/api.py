"""The Python API behind the commands: profile one point, sweep a grid."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Callable, Iterable

from effprof.config import ConfigError, resolve_config
from effprof.measure.harness import Options, measure_point
from effprof.registry import MODES, get_spec, list_mechanisms

if TYPE_CHECKING:
    import pandas

# The mechanisms `effprof compare` measures when none are named: one per family, where registered.
DEFAULT_COMPARE = ("softmax_attention", "linear_attention", "mamba", "mamba2", "sliding_window", "moe_topk")
DEFAULT_VARY = {"seq_len": [256, 512, 1024, 2048]}


def default_compare() -> list[str]:
    registered = set(list_mechanisms())
    return [n for n in DEFAULT_COMPARE if n in registered]


def profile(name: str, mode: str = "forward", options: Options = Options(), **config: Any) -> dict[str, Any]:
    return measure_point(name, mode, config, options)


def plan(names: Iterable[str], vary: dict[str, list[Any]], modes: Iterable[str], config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (name, mode, overrides) point of a sweep, each validated before anything runs."""
    names, modes = list(names), list(modes)
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
    for name in names:
        spec = get_spec(name)
        for mode in modes:
            if mode not in spec.modes:
                continue  # e.g. decode of a non-causal mechanism: not applicable, not an error
            for values in itertools.product(*(vary[k] for k in keys)):
                overrides = {**config, **dict(zip(keys, values))}
                resolve_config(spec, overrides)  # raises ConfigError naming the bad value
                points.append((name, mode, overrides))
    if not points:
        raise ConfigError(f"no point to measure: none of {', '.join(names)} supports mode {', '.join(modes)}")
    return points


def run_points(
    points: list[tuple[str, str, dict[str, Any]]],
    options: Options = Options(),
    output: str | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure each point in order; append each record to `output` as soon as it is measured."""
    from effprof import records as store

    results = []
    for name, mode, overrides in points:
        record = measure_point(name, mode, overrides, options)
        if output:
            store.append(output, record)
        results.append(record)
        if on_record:
            on_record(record)
    return results


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
