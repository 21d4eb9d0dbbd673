"""Mechanisms from outside effprof, loaded only when named.

    effprof --plugin my_package.my_module:my_builder list
    effprof list --plugin my_package.my_module:my_builder      # after the command too
    effprof --plugin NAME ...        # NAME from the `effprof.mechanisms` entry-point group

    # ./pyproject.toml: loaded only by the commands that build mechanisms (profile, sweep,
    # compare, check, patterns), each time with a line on stderr; never by fit, report, merge,
    # list, explain, validate or any --help (a cloned repository's code is not run by reading)
    [tool.effprof]
    plugins = ["my_package.my_module:my_builder"]

The named attribute is a builder decorated with `@effprof.registry.register(...)`,
a `MechanismSpec` whose builder is set, or a list of either. Modules are imported
as Python imports them, with the current folder as a last resort (so a plugin in
the project at hand loads from the `effprof` script as from `python -m effprof`).

Loading checks the spec's own fields and refuses the plugin in one line (exit 2): a
plain name, not a built-in's; claims naming a metric, a numeric config key, a finite
exponent, a mode. This module only loads; the contract a mechanism must meet (a cost
model that answers for every mode, the (batch, seq_len, d_model) shape, the declared
causality, decode methods for causal ones, prefill + steps equal to forward, FLOP
counts against the cost model) is effprof.contract. The commands pass
`check=effprof.contract.validate` (its structural checks) to `load_plugin`;
`effprof validate PLUGIN` runs every check and reports each as pass or fail.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from effprof.config import KEYS, ConfigError
from effprof.registry import MODES, Claim, MechanismSpec, add, get_spec, list_mechanisms, unregister
from effprof.suggest import one_line

ENTRY_POINT_GROUP = "effprof.mechanisms"
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
MAX_EXPONENT = 10.0


class PluginError(ConfigError):
    """A plugin that cannot be loaded or breaks the contract (exit 2, one line)."""


Check = Callable[[MechanismSpec], None]  # raises PluginError for a mechanism that breaks the contract


def load_plugin(target: str, check: Check | None = None) -> list[str]:
    """Import `module:attr` (or an entry point's name), register its mechanisms, return their names.

    The spec's own fields are checked always (check_spec). `check` runs on each registered spec after
    (the commands pass effprof.contract.validate, the structural checks); a mechanism it refuses is
    unregistered and its PluginError raised. Without it (`effprof validate`, which runs every check and
    reports each; an isolated worker, whose parent checked them) nothing is built.
    """
    if target in _LOADED:  # named twice (pyproject.toml and --plugin): imported, registered and checked once
        return list(_LOADED[target])
    obj = _resolve(target)
    specs = _specs(obj, target)
    for spec in specs:
        check_spec(spec)
        if spec.name in list_mechanisms() and get_spec(spec.name) is not spec:
            raise PluginError(f"plugin mechanism {spec.name!r} is named like an already registered mechanism; give it another name")
        if spec.name not in list_mechanisms():  # not yet: a plain spec, or named a second time (pyproject.toml and --plugin)
            add(spec)
        if check is None:
            continue
        try:
            check(spec)
        except PluginError:
            unregister(spec.name)  # also one its own module registered with @register on import
            raise
    _LOADED[target] = [s.name for s in specs]
    return [s.name for s in specs]


_LOADED: dict[str, list[str]] = {}  # target -> the mechanisms load_plugin registered from it in this process, in order


def loaded_plugins() -> tuple[str, ...]:
    """The plugin targets loaded in this process whose mechanisms are still registered, in order: what an isolated
    worker loads to see the same mechanisms."""
    registered = set(list_mechanisms())
    return tuple(target for target, names in _LOADED.items() if registered.issuperset(names))


def configured_plugins(path: Path = Path("pyproject.toml")) -> list[str]:
    """`[tool.effprof] plugins = [...]` of `path` (./pyproject.toml); [] when there is none.

    Only a file that mentions [tool.effprof] is parsed, so an unrelated broken pyproject.toml
    never stops effprof; in one that does, a bad value is a one-line error.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    if "[tool.effprof" not in text:
        return []
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        raise PluginError(f"{path}: cannot read [tool.effprof]: {one_line(e, 200)}") from None
    plugins = data.get("tool", {}).get("effprof", {}).get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) and p.strip() for p in plugins):
        raise PluginError(f"{path}: [tool.effprof] plugins must be a list of module:attr strings, e.g. plugins = [\"my_pkg.mixers:my_mixer\"]")
    return [p.strip() for p in plugins]


# The commands that build mechanisms, the only ones that load ./pyproject.toml's plugins.
BUILDING_COMMANDS = ("profile", "sweep", "compare", "check", "patterns")


def load_project_plugins(say: Callable[[str], None], check: Check | None = None, path: Path = Path("pyproject.toml")) -> list[str]:
    """Load `[tool.effprof] plugins` of ./pyproject.toml, saying so first (`say`: the command's own stderr, which escapes
    the text — the plugin names come from a file): called by the
    commands that build mechanisms (BUILDING_COMMANDS) and by nothing else, so a command that only reads results,
    lists or explains never runs the code of the folder it happens to run in (as pytest with conftest.py, this is
    code of the project at hand: it runs where mechanisms are built, and each time it says so). `check`: as load_plugin's."""
    targets = configured_plugins(path)
    if not targets:
        return []
    say(f"loading plugins from ./{path.name}: {', '.join(targets)}")
    return [name for target in targets for name in load_plugin(target, check)]


def import_module(name: str):
    """importlib.import_module, with the current folder searched last (the `effprof` script's sys.path lacks it)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    return importlib.import_module(name)


def _resolve(target: str) -> Any:
    if not target.strip():
        raise PluginError("--plugin '' names nothing; give module:attr or an installed entry point")
    if ":" not in target:
        found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == target]
        if not found:
            names = [ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
            raise PluginError(f"--plugin {target!r} is neither module:attr nor an installed entry point; installed: {', '.join(names) or 'none'}")
        return found[0].load()
    return import_attr(target, "--plugin", PluginError)


def import_attr(target: str, flag: str, error: type[Exception]) -> Any:
    """The object `module:attr` names (attr may be dotted), imported as user code (runtime.guard.user_code: an exit on
    import is an error, torch settings it changes are put back); `error(one line)` naming `flag` when it cannot be."""
    from effprof.runtime.guard import user_code

    module_name, _, attr = target.partition(":")
    try:
        with user_code():
            module = import_module(module_name)
    except Exception as e:  # the target's own import error, in one line
        raise error(f"{flag} {target!r}: cannot import {module_name!r}: {type(e).__name__}: {one_line(e, 300)}") from None
    found = module
    for part in attr.split("."):
        if not hasattr(found, part):
            raise error(f"{flag} {target!r}: module {module_name!r} has no attribute {attr!r}")
        found = getattr(found, part)
    return found


def _specs(obj: Any, target: str) -> list[MechanismSpec]:
    items = obj if isinstance(obj, (list, tuple)) else [obj]
    specs = []
    for item in items:
        spec = item if isinstance(item, MechanismSpec) else getattr(item, "spec", None)
        if not isinstance(spec, MechanismSpec) or spec.builder is None:
            raise PluginError(f"--plugin {target!r}: {item!r} is not a registered mechanism (decorate its builder with @register)")
        specs.append(spec)
    return specs


def check_spec(spec: MechanismSpec) -> None:
    """The spec's own fields: a plain name and family, claims that mean something. PluginError otherwise."""
    name = spec.name
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise PluginError(f"plugin mechanism name {name!r} is not accepted; a name is a letter then letters, digits, _ . - (at most 64)")
    if not isinstance(spec.family, str) or not NAME_PATTERN.fullmatch(spec.family):
        raise PluginError(f"plugin mechanism {name!r}: family {spec.family!r} is not accepted; a letter then letters, digits, _ . -")
    if not isinstance(spec.defaults, dict):
        raise PluginError(f"plugin mechanism {name!r}: defaults must be a dict of config keys, not {type(spec.defaults).__name__}")
    for claim in spec.claims:
        problem = claim_problem(claim)
        if problem:
            raise PluginError(f"plugin mechanism {name!r}: claim {tuple(claim)!r} {problem}")


def claim_problem(claim: Any) -> str:
    """What is wrong with a claim, or '' (metric, numeric axis, finite exponent within ±10, mode, log power)."""
    from effprof.store.metrics import CLAIMABLE

    if not isinstance(claim, Claim):
        return "is not an effprof.registry.Claim(metric, axis, exponent, mode)"
    if claim.metric not in CLAIMABLE:
        return f"names metric {claim.metric!r}; accepted: {', '.join(CLAIMABLE)}"
    if claim.axis not in KEYS or KEYS[claim.axis].type not in (int, float):
        return f"names axis {claim.axis!r}, which is not a numeric config key (e.g. seq_len, d_model, batch)"
    for label, value in (("exponent", claim.exponent), ("log_power", claim.log_power)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or abs(value) > MAX_EXPONENT:
            return f"has {label} {value!r}; accepted: a finite number within ±{MAX_EXPONENT:g}"
    if claim.mode not in MODES:
        return f"has mode {claim.mode!r}; accepted: {', '.join(MODES)}"
    if claim.where is not None and (not isinstance(claim.where, dict) or not all(k in KEYS for k in claim.where)):
        return f"has where={claim.where!r}; accepted: a dict of config keys"
    return ""
