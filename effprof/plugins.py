"""Mechanisms from outside effprof, loaded only when named.

    effprof --plugin my_package.my_module:my_builder list
    effprof --plugin NAME ...        # NAME from the `effprof.mechanisms` entry-point group

The named attribute is a builder decorated with `@effprof.registry.register(...)`,
a `MechanismSpec` whose builder is set, or a list of either. Each mechanism is
checked against the contract before it is used: a cost model that answers for
every mode, a forward that keeps the (batch, seq_len, d_model) shape, the declared
causality holding on a tiny input, and decode methods for causal ones. One that
falls short is removed again and the error says what failed.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

from effprof.config import ConfigError
from effprof.registry import MechanismSpec, add, list_mechanisms, unregister

ENTRY_POINT_GROUP = "effprof.mechanisms"
TINY = {"batch": 1, "seq_len": 12, "d_model": 16}


class PluginError(ConfigError):
    """A plugin that cannot be loaded or breaks the contract (exit 2, one line)."""


def load_plugin(target: str) -> list[str]:
    """Import `module:attr` (or an entry point's name), validate its mechanisms, return their names."""
    obj = _resolve(target)
    specs = _specs(obj, target)
    for spec in specs:
        registered_here = spec.name not in list_mechanisms()
        if registered_here:
            add(spec)
        try:
            validate(spec)
        except PluginError:
            if registered_here:
                unregister(spec.name)
            raise
    return [s.name for s in specs]


def _resolve(target: str) -> Any:
    if ":" not in target:
        found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == target]
        if not found:
            names = [ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
            raise PluginError(f"--plugin {target!r} is neither module:attr nor an installed entry point; installed: {', '.join(names) or 'none'}")
        return found[0].load()
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # an import error inside a plugin is the plugin's, reported in one line
        raise PluginError(f"--plugin {target!r}: cannot import {module_name!r}: {type(e).__name__}: {e}") from None
    if not hasattr(module, attr):
        raise PluginError(f"--plugin {target!r}: module {module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)


def _specs(obj: Any, target: str) -> list[MechanismSpec]:
    items = obj if isinstance(obj, (list, tuple)) else [obj]
    specs = []
    for item in items:
        spec = item if isinstance(item, MechanismSpec) else getattr(item, "spec", None)
        if not isinstance(spec, MechanismSpec) or spec.builder is None:
            raise PluginError(f"--plugin {target!r}: {item!r} is not a registered mechanism (decorate its builder with @register)")
        specs.append(spec)
    return specs


def validate(spec: MechanismSpec) -> None:
    """Check one mechanism against the contract on a tiny input."""
    import torch

    from effprof.config import resolve_config

    name = spec.name
    try:
        config = resolve_config(spec, TINY)
    except ConfigError as e:
        raise PluginError(f"plugin mechanism {name!r}: its defaults do not validate: {e}") from None
    if not callable(spec.cost):
        raise PluginError(f"plugin mechanism {name!r} has no cost model (spec.cost)")
    for mode in spec.modes:
        try:
            cost = spec.cost(config, mode)
            float(cost.flops)
        except Exception as e:
            raise PluginError(f"plugin mechanism {name!r}: cost model fails for mode {mode}: {type(e).__name__}: {e}") from None
    try:
        module = spec.builder(config).eval()
        x = torch.randn(1, TINY["seq_len"], TINY["d_model"], generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            y = module(x)
    except Exception as e:
        raise PluginError(f"plugin mechanism {name!r}: building or running it at tiny sizes fails: {type(e).__name__}: {e}") from None
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise PluginError(f"plugin mechanism {name!r}: forward returned {shape}, expected {tuple(x.shape)} (batch, seq_len, d_model)")
    if spec.causal:
        x2 = x.clone()
        x2[:, 6:] += 1.0
        with torch.no_grad():
            y2 = module(x2)
        if not torch.allclose(y[:, :6], y2[:, :6], atol=1e-5):
            raise PluginError(f"plugin mechanism {name!r} declares causal=True but its outputs before t depend on tokens after t")
        for method in ("init_state", "prefill", "step"):
            if not callable(getattr(module, method, None)):
                raise PluginError(f"plugin mechanism {name!r} is causal but has no {method}() for decode")
