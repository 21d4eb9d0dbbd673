"""A factory target's import and keys: `pkg.mod:attr` or `hf:model_type.layer` to (factory, summary, family), its
parameters to spec defaults, the types of its own keys (outside effprof.config.KEYS), and the builder that calls it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from effprof.config import ASCII_INTEGER, ASCII_NUMBER, KEYS, RUN_DEFAULTS, ConfigError
from effprof.plugins import import_attr
from effprof.registry import Cost

_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def no_analytic_cost(config: dict[str, Any], mode: str) -> Cost:
    """A module has no analytic model: FLOPs unknown (None), no declared state."""
    return Cost(flops=None)


def resolve_factory(target: str) -> tuple[Callable[..., Any], str, str]:
    """(factory, one-line summary, family) of `pkg.mod:attr` or `hf:model_type.layer`."""
    prefix, _, attr = target.partition(":")
    if prefix == "hf":
        from effprof.modules.hf import hf_factory

        factory, summary = hf_factory(attr)
        return factory, summary, "huggingface"
    if not prefix or not attr:
        raise ConfigError(f"--module {target!r} is not pkg.module:factory or hf:model_type.layer")
    factory = import_attr(target, "--module", ConfigError)
    if not callable(factory):
        raise ConfigError(f"--module {target!r}: {attr!r} is a {type(factory).__name__}, not a callable factory")
    doc = (inspect.getdoc(factory) or "").strip().splitlines()
    return factory, doc[0] if doc else f"module from {target}", "module"


def signature_defaults(target: str, factory: Callable[..., Any]) -> tuple[dict[str, Any], dict[str, type]]:
    """The factory's parameters as spec defaults, and the types of those outside effprof.config.KEYS."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        raise ConfigError(f"--module {target!r}: cannot read the factory's signature; give it keyword parameters") from None
    defaults: dict[str, Any] = {}
    extra: dict[str, type] = {}
    for name, p in parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind is p.POSITIONAL_ONLY:
            raise ConfigError(f"--module {target!r}: parameter {name!r} is positional-only; a factory takes config keys by name")
        if name in RUN_DEFAULTS:  # effprof supplies these; a factory's own default replaces effprof's (a published
            if p.default is not p.empty:  # model's width, its dtype)
                defaults[name] = p.default
            continue
        if p.default is p.empty:
            raise ConfigError(f"--module {target!r}: parameter {name!r} has no default; give it one "
                              f"(only {', '.join(RUN_DEFAULTS)} may go without)")
        defaults[name] = p.default
        if name not in KEYS:
            if p.default is not None and not isinstance(p.default, (bool, int, float, str)):
                raise ConfigError(f"--module {target!r}: parameter {name!r} defaults to a {type(p.default).__name__}; "
                                  "config values are int, float, bool or str")
            extra[name] = type(p.default) if p.default is not None else str
    return defaults, extra


def make_validate(target: str, extra: dict[str, type]) -> Callable[[dict[str, Any]], None]:
    def validate(config: dict[str, Any]) -> None:
        """Type the factory's own keys (CLI strings arrive as text) by their defaults' types."""
        for key, type_ in extra.items():
            config[key] = _coerce_extra(target, key, config[key], type_)

    return validate


def _coerce_extra(target: str, key: str, value: Any, type_: type) -> Any:
    if value is None or (isinstance(value, type_) and not (type_ is int and isinstance(value, bool))):
        return value
    text = str(value).strip()
    if type_ is bool:
        if text.lower() in _BOOLS:
            return _BOOLS[text.lower()]
        raise ConfigError(f"{key}={value!r} is not a boolean for {target}; accepted: true, false")
    pattern = {int: ASCII_INTEGER, float: ASCII_NUMBER}.get(type_)
    if pattern is not None and not pattern.fullmatch(text):  # int()/float() also take '٦٤', '６４' and '6_4'
        raise ConfigError(f"{key}={value!r} is not a {type_.__name__} in ASCII digits, as {target}'s default for {key} is")
    try:
        return type_(text)
    except ValueError:
        raise ConfigError(f"{key}={value!r} is not a {type_.__name__}, as {target}'s default for {key} is") from None


def make_builder(target: str, factory: Callable[..., Any]) -> Callable[[dict[str, Any]], Any]:
    """The spec's builder: calls `factory` with the config keys it names (all of them where it takes **kwargs)."""
    parameters = inspect.signature(factory).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in parameters.values())

    def build_module(config: dict[str, Any]):
        import torch

        from effprof.modules.wrap import ModuleWithInputs

        kwargs = dict(config) if takes_all else {k: config[k] for k in parameters if k in config}
        made = factory(**kwargs)
        if isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], torch.nn.Module):
            return ModuleWithInputs(*made)
        if not isinstance(made, torch.nn.Module):
            raise TypeError(f"{target} returned a {type(made).__name__}; a factory returns an nn.Module or (module, inputs)")
        return made

    return build_module
