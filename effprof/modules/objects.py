"""A module instance or a factory given as a Python object (effprof.profile / effprof.sweep), as a target.

    effprof.profile(torch.nn.Linear(128, 128), seq_len=128)          # an instance: measured as it is
    effprof.profile(lambda d_model: MyLayer(d_model), seq_len=1024)   # a factory: built at each point's config

A factory object is registered as the target `pkg.mod:qualname` (a factory with that import path is the
same thing on the command line); an instance as `pkg.mod:Class@<id>`, one target per instance. Both are
ModuleSpecs (modules/__init__.py): probed at small sizes first, no analytic cost, claims only as given.
An instance keeps its own weights: its config must match its shapes (d_model), and count-only measures a
fake copy of it (the instance itself is never changed). The targets live in this process only: they run
on the local executor, not in --isolate workers or on Ray.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from effprof.config import ConfigError


def object_target(obj: Any, config: dict[str, Any]) -> str:
    """Register `obj` (an nn.Module instance or a factory callable) and return its target name."""
    from effprof.modules import ModuleSpec, module_spec
    from effprof.registry import get_spec, list_mechanisms, unregister

    if isinstance(obj, nn.Module):
        kind = type(obj)
        name = f"{kind.__module__}:{kind.__qualname__}@{id(obj):x}"
        factory = _instance_factory(obj)
        summary = f"the {kind.__name__} instance given"
    elif callable(obj):
        name = f"{getattr(obj, '__module__', None) or 'factory'}:{getattr(obj, '__qualname__', type(obj).__name__)}"
        factory = obj
        doc = (inspect.getdoc(obj) or "").strip().splitlines()
        summary = doc[0] if doc else f"module from {name}"
    else:
        raise ConfigError(f"{obj!r} is neither a mechanism name, an nn.Module nor a factory; accepted: a name from "
                          "effprof.list_mechanisms(), an nn.Module instance, or a callable returning one")
    if name in list_mechanisms():
        existing = get_spec(name)
        if isinstance(existing, ModuleSpec) and getattr(existing.factory, "__wrapped__", existing.factory) is obj:
            return name
        unregister(name)  # the same name for another object (an instance whose id was reused, a redefined factory)
    module_spec(name, (), config, made_by=(factory, summary, "module"))
    return name


def _instance_factory(module: nn.Module) -> Callable[..., nn.Module]:
    def instance(**config: Any) -> nn.Module:
        return module

    instance.__wrapped__ = module
    return instance
