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

Loading checks what would make every measurement wrong and refuses the plugin in
one line (exit 2): a well-formed spec (a plain name, not a built-in's; claims
naming a metric, a numeric config key, a finite exponent, a mode), a cost model
that answers for every mode, a forward that keeps the (batch, seq_len, d_model)
shape, the declared causality, decode methods for causal ones, and prefill + steps
equal to forward. `effprof validate PLUGIN` (`contract_checks`) runs every test
effprof runs on its own mechanisms, FLOP counts against the cost model included,
and reports each as pass or fail.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from effprof.config import KEYS, ConfigError
from effprof.registry import MODES, Claim, Cost, MechanismSpec, add, get_spec, list_mechanisms, unregister

ENTRY_POINT_GROUP = "effprof.mechanisms"
TINY = {"batch": 2, "seq_len": 24, "d_model": 32}  # structural checks (tests/helpers.py uses the same)
FLOP_SEQ_LEN = 128  # FLOP checks: the spec's default sizes at this sequence length
FLOP_TOLERANCE = 0.02
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
MAX_EXPONENT = 10.0


class PluginError(ConfigError):
    """A plugin that cannot be loaded or breaks the contract (exit 2, one line)."""


def load_plugin(target: str, check: bool = True) -> list[str]:
    """Import `module:attr` (or an entry point's name), validate its mechanisms, return their names.

    check=False registers them without the structural checks (`effprof validate` runs them all
    and reports each); the spec's own fields are checked either way.
    """
    obj = _resolve(target)
    specs = _specs(obj, target)
    for spec in specs:
        check_spec(spec)
        if spec.name in list_mechanisms() and get_spec(spec.name) is not spec:
            raise PluginError(f"plugin mechanism {spec.name!r} is named like an already registered mechanism; give it another name")
        if spec.name not in list_mechanisms():  # not yet: a plain spec, or named a second time (pyproject.toml and --plugin)
            add(spec)
        if not check:
            continue
        try:
            validate(spec)
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
        raise PluginError(f"{path}: cannot read [tool.effprof]: {' '.join(str(e).split())[:200]}") from None
    plugins = data.get("tool", {}).get("effprof", {}).get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) and p.strip() for p in plugins):
        raise PluginError(f"{path}: [tool.effprof] plugins must be a list of module:attr strings, e.g. plugins = [\"my_pkg.mixers:my_mixer\"]")
    return [p.strip() for p in plugins]


# The commands that build mechanisms, the only ones that load ./pyproject.toml's plugins.
BUILDING_COMMANDS = ("profile", "sweep", "compare", "check", "patterns")


def load_project_plugins(path: Path = Path("pyproject.toml"), say: Callable[[str], None] | None = None) -> list[str]:
    """Load `[tool.effprof] plugins` of ./pyproject.toml, saying so first (`say`, stderr by default): called by the
    commands that build mechanisms (BUILDING_COMMANDS) and by nothing else, so a command that only reads results,
    lists or explains never runs the code of the folder it happens to run in (as pytest with conftest.py, this is
    code of the project at hand: it runs where mechanisms are built, and each time it says so)."""
    targets = configured_plugins(path)
    if not targets:
        return []
    from effprof.render.escape import terminal

    message = f"loading plugins from ./{path.name}: {', '.join(targets)}"
    if say is None:
        print(terminal(message), file=sys.stderr, flush=True)
    else:
        say(terminal(message))
    return [name for target in targets for name in load_plugin(target)]


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
    module_name, _, attr = target.partition(":")
    from effprof.measure.guard import user_code

    try:
        with user_code():  # sys.exit on import is an error too; torch settings the import changes are put back
            module = import_module(module_name)
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
    from effprof.metrics import CLAIMABLE

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


def validate(spec: MechanismSpec) -> None:
    """At load: the structural checks of `contract_checks`; the first that fails raises PluginError."""
    for result in contract_checks(spec, flops=False):
        if not result.passed:
            raise PluginError(f"plugin mechanism {spec.name!r}: {result.detail}")


@dataclass(frozen=True)
class CheckResult:
    """One contract test: its name, whether it passed, and what it found."""

    name: str
    passed: bool
    detail: str = ""


def contract_checks(spec: MechanismSpec, flops: bool = True) -> list[CheckResult]:
    """Every contract test effprof runs on its own mechanisms (tests/test_mechanisms.py), for one spec.

    Structural (tiny sizes): cost model answers in every mode, output shape, causality,
    decode methods, prefill + steps = forward, init_state + steps = forward, every impl
    computes the same function, state bytes = the cost model's. With `flops`: counted
    FLOPs within 2% of the cost model in forward and train, no uncounted op, and the
    decode cost per generated token. A check whose prerequisite failed is not run.
    """
    import torch

    from effprof.config import resolve_config

    results: list[CheckResult] = []

    from effprof.measure.guard import user_code

    changes: list[str] = []  # torch settings the mechanism's code changed (put back after each check)

    def run(name: str, check: Callable[[], str]) -> bool:
        try:
            with user_code(changes):  # sys.exit in the plugin fails the check; torch settings it changes are put back
                problem = check()
        except Exception as e:  # a plugin's error is a failed check, reported in one line
            problem = f"raised {type(e).__name__}: {' '.join(str(e).split())[:300]}"
        results.append(CheckResult(name, not problem, problem or ""))
        return not problem

    tiny: dict[str, Any] = {}

    def config_check() -> str:
        tiny.update(resolve_config(spec, {**TINY, **spec.test_overrides}))
        return ""

    if not run("config: defaults validate", config_check):
        return results
    own = [k for k in spec.defaults if k not in KEYS]
    if own:  # a plugin's own keys: settable (--param, a check's params) as they are; an axis only once declared
        results.append(CheckResult("config: own keys", True, f"{', '.join(own)}: settable without declaring; to sweep one or "
                                   f"make it a check's axis, declare it: effprof.config.declare_key({own[0]!r}, int, \"what it counts\")"))
    run("cost model: answers in every mode", lambda: _cost_problem(spec, tiny))
    x = torch.randn(tiny["batch"], tiny["seq_len"], tiny["d_model"], generator=torch.Generator().manual_seed(1))
    module = _built(spec, tiny, changes)
    if not run("forward: keeps the (batch, seq_len, d_model) shape", lambda: _shape_problem(module(), x)):
        return results
    if spec.causal:
        run("causal: outputs up to t ignore tokens after t", lambda: _causal_problem(module(), x))
        if run("decode: has init_state, prefill, step", lambda: _methods_problem(module())):
            run("decode: prefill + steps = forward", lambda: prefill_problem(module(), x))
            run("decode: init_state + steps = forward", lambda: steps_problem(module(), x))
            run("decode: state bytes = the cost model's", lambda: _state_problem(spec, module(), tiny, x))
    if len(spec.impls) > 1:
        run("impls: every impl computes the same function", lambda: _impls_problem(spec, tiny, x, changes))
    if flops:
        sized = resolve_config(spec, {**spec.test_overrides, "seq_len": FLOP_SEQ_LEN})
        for mode in spec.modes:
            if spec.cost(sized, mode).flops is None:  # Cost(flops=None): no analytic model, FLOPs are counted only
                run(f"flops: every op counted in {mode} (no analytic model: Cost(flops=None))", lambda mode=mode: _flops_problem(spec, sized, mode, changes))
                continue
            label = "decode: cost per generated token = counted" if mode == "decode" else f"flops: counted = analytic in {mode} (±2%)"
            run(label, lambda mode=mode: _flops_problem(spec, sized, mode, changes))
        for mode in spec.modes:
            run(f"records: the {mode} record passes the record schema", lambda mode=mode: records_problem(spec, tiny, mode, changes))
        results.append(CheckResult("torch state: leaves torch's global settings as they were", not changes, "; ".join(changes)))
    return results


def _built(spec: MechanismSpec, config: dict[str, Any], changes: list[str]) -> Callable[[], Any]:
    """The module at `config` (built once, on first use), in eval mode."""
    cache: list[Any] = []

    def get():
        if not cache:
            from effprof.modules import build_with_spec

            cache.append(build_with_spec(spec, config, changes).eval())
        return cache[0]

    return get


def _cost_problem(spec: MechanismSpec, config: dict[str, Any]) -> str:
    if not callable(spec.cost):
        return "has no cost model (spec.cost)"
    for mode in spec.modes:
        cost = spec.cost(config, mode)
        if not isinstance(cost, Cost):
            return f"cost model returns a {type(cost).__name__} for mode {mode}; accepted: effprof.registry.Cost"
        for field in ("flops", "state_bytes"):  # "1e9" as text passed float() here, and then no command could read the records
            value = getattr(cost, field, None)
            if field == "flops" and value is None:  # Cost(flops=None): no analytic model, FLOPs are counted only
                continue
            if not _is_figure(value):
                none = ", or None for no analytic model" if field == "flops" else ""
                return f"cost model gives {field}={value!r} for mode {mode}; accepted: a finite number >= 0{none}"
        for key, value in (getattr(cost, "extra", None) or {}).items():
            if not _is_figure(value):
                return f"cost model gives extra[{key!r}]={value!r} for mode {mode}; accepted: a finite number >= 0"
    return ""


def _is_figure(value: Any) -> bool:
    """A finite real number >= 0 (numpy's included), not a bool or a string."""
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def records_problem(spec: MechanismSpec, config: dict[str, Any], mode: str, changes: list[str] | None = None) -> str:
    """Why the record a sweep would write for `spec` in `mode` at `config` is not one every command can read
    ("" when it is; the torch settings the point changed are appended to `changes`): the point is measured (timing
    short), encoded as `records.append` writes it, read back and checked with `records.validate_record`, the check
    `fit`, `report` and `merge` apply to every line."""
    import json

    from effprof.measure.harness import Options, measure_point
    from effprof.records import encode, validate_record

    options = Options(max_time_s=0.01, fvcore=False, roofline=False)
    record = measure_point(spec.name, mode, config, options)
    if changes is not None:  # the harness put them back too, and named them in the record
        changes.extend(w for w in record.get("warnings", ()) if w not in changes)
    if record["status"] != "ok":
        return f"the {mode} point at seq_len={config['seq_len']} ends {record['status']}: {record['error']}"
    problem = validate_record(json.loads(encode(record)))
    return f"its {mode} record would be skipped by fit, report and merge: {problem}" if problem else ""


def _shape_problem(module, x) -> str:
    import torch

    with torch.no_grad():
        y = module(x)
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        return f"forward returned {shape}, expected {tuple(x.shape)} (batch, seq_len, d_model)"
    if not torch.isfinite(y).all():
        return "forward returned non-finite values"
    return ""


def _causal_problem(module, x) -> str:
    import torch

    t = x.shape[1] // 2
    x2 = x.clone()
    x2[:, t + 1:] = torch.randn_like(x2[:, t + 1:]) * 3
    with torch.no_grad():
        y, y2 = module(x), module(x2)
    if not torch.allclose(y[:, : t + 1], y2[:, : t + 1], rtol=1e-5, atol=1e-5):
        return "declares causal=True but its outputs before t depend on tokens after t"
    return ""


def _methods_problem(module) -> str:
    missing = [m for m in ("init_state", "prefill", "step") if not callable(getattr(module, m, None))]
    return f"is causal but has no {', '.join(missing)}() for decode" if missing else ""


def _mismatch(outputs, full, what: str) -> str:
    import torch

    got = torch.cat(outputs, dim=1)
    if got.shape != full.shape:
        return f"{what} gives shape {tuple(got.shape)}, forward {tuple(full.shape)}"
    if not torch.allclose(got, full, rtol=1e-4, atol=1e-4):
        worst = (got - full).abs().max().item()
        return f"{what} disagrees with forward (largest difference {worst:.3g}; tolerance 1e-4)"
    return ""


def prefill_problem(module, x) -> str:
    """Why prefill of all but the last 5 tokens, then a step per token, differs from forward ("" when it does not).
    The generic tests of every registered mechanism use this very check, as `effprof validate` does."""
    import torch

    split = x.shape[1] - 5
    with torch.no_grad():
        full = module(x)
        y, state = module.prefill(x[:, :split])
        outputs = [y]
        for i in range(split, x.shape[1]):
            y_t, state = module.step(x[:, i : i + 1], state)
            outputs.append(y_t)
    return _mismatch(outputs, full, f"prefill of {split} tokens then {x.shape[1] - split} steps")


def steps_problem(module, x) -> str:
    """Why init_state then a step per token (over 9 tokens) differs from forward ("" when it does not)."""
    import torch

    x = x[:, :9]
    with torch.no_grad():
        full = module(x)
        state = module.init_state(x.shape[0])
        outputs = []
        for i in range(x.shape[1]):
            y_t, state = module.step(x[:, i : i + 1], state)
            outputs.append(y_t)
    return _mismatch(outputs, full, "init_state then a step per token")


def _state_problem(spec: MechanismSpec, module, config: dict[str, Any], x) -> str:
    import torch

    from effprof.mechanisms.base import state_nbytes

    with torch.no_grad():
        _, state = module.prefill(x)
    measured, analytic = state_nbytes(state), spec.cost(config, "decode").state_bytes
    if not math.isclose(measured, analytic, rel_tol=FLOP_TOLERANCE):
        return f"the state after a prefill holds {measured} bytes, the cost model says {analytic:g}"
    return ""


def _impls_problem(spec: MechanismSpec, config: dict[str, Any], x, changes: list[str]) -> str:
    import torch

    from effprof.modules import build_with_spec

    reference = build_with_spec(spec, {**config, "impl": spec.impls[0]}, changes).eval()
    with torch.no_grad():
        expected = reference(x)
    for impl in spec.impls[1:]:
        other = build_with_spec(spec, {**config, "impl": impl}, changes).eval()
        other.load_state_dict(reference.state_dict())
        with torch.no_grad():
            if not torch.allclose(other(x), expected, rtol=1e-4, atol=1e-4):
                return f"impl={impl} computes a different function from impl={spec.impls[0]}"
    return ""


def _flops_problem(spec: MechanismSpec, config: dict[str, Any], mode: str, changes: list[str]) -> str:
    from effprof.measure.flops import FlopCounter
    from effprof.measure.workload import make_workload
    from effprof.modules import build_with_spec

    module = build_with_spec(spec, config, changes)
    work = make_workload(module, config, mode)
    with FlopCounter() as counter:
        work.run()
    counted = counter.total / work.per_call
    if counter.unknown_ops:
        return f"ops with no FLOP formula ran (their FLOPs are missing from the count): {', '.join(sorted(counter.unknown_ops))}"
    if spec.cost(config, mode).flops is None:
        return "" if counted > 0 else "no FLOPs were counted: the module ran no op with a FLOP formula"
    analytic = float(spec.cost(config, mode).flops)
    if math.isclose(counted, analytic, rel_tol=FLOP_TOLERANCE):
        return ""
    ratio = analytic / counted if counted else math.inf
    hint = ""
    if mode == "decode" and ratio > 4:
        hint = "; decode cost is per generated token (effprof.cost_model.mean_over_decode), not the prefill's"
    return (f"counted {counted:,.0f} FLOPs{' per token' if mode == 'decode' else ''} at seq_len={config['seq_len']}, "
            f"the cost model says {analytic:,.0f} (×{ratio:.2f}){hint}")
