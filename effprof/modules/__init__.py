"""Any PyTorch module as an effprof mechanism: `--module pkg.mod:factory` or `--module hf:llama.attention`.

A factory is a function (or class) whose keyword parameters are config keys:

    def my_layer(d_model: int, seq_len: int, n_heads: int = 4, rope: bool = True) -> nn.Module: ...
    def my_layer(d_model: int, batch: int, seq_len: int) -> tuple[nn.Module, dict]: ...   # (module, inputs)

`factory(**config)` returns either a module whose `forward(x)` maps effprof's input
x: (batch, seq_len, d_model) to the same shape, or `(module, inputs)` where `inputs`
are the other arguments the module needs beside x (a dict of keyword arguments, or a
tuple of positional arguments after x): masks, position embeddings, ids. x is always
passed first; the output (or its first element, for modules returning tuples) must
have x's shape.

Config keys. The factory receives the keys it names (every key when it takes
**kwargs). A key of DESIGN.md's table (d_model, n_heads, window, ...) is typed as
declared there; any other parameter is typed by its default (int, float, bool or
str), so `--param rope=false` arrives as False. Every parameter needs a default,
except the run keys batch, seq_len, d_model, gen_len, dtype and device, which
effprof always supplies. A key the factory does not name is refused with the list
of those it accepts.

What is measured. Everything that needs no spec: counted FLOPs (and fvcore beside
them), time, peak and activation memory, params, in modes forward and train; decode
too when the module follows effprof's step contract (init_state, prefill, step; see
effprof.mechanisms.base) and is causal. Analytic FLOPs are empty (None, never 0) and
claims are those given with `--claim flops:seq_len=2` (effprof.modules.parse_claim).

When a factory is first named, it is built once at small sizes (seq_len 16) and run:
a factory that raises, a module whose output has the wrong shape, inputs that do
not fit end the command with one line (exit 2) before anything is measured. At the
measured sizes, the same failures become `error` records of the sweep.

The mechanism's name is the target itself ("pkg.mod:factory", "hf:llama.attention"),
so records, fits and reports name it as the user did.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from effprof.config import ASCII_INTEGER, ASCII_NUMBER, KEYS, OPTIONAL_KEYS, RUN_DEFAULTS, ConfigError, resolve_config
from effprof.registry import MODES, Claim, Cost, MechanismSpec, Paper, add, get_spec, list_mechanisms
from effprof.suggest import did_you_mean

PROBE_SEQ_LEN = 16  # the size a factory is first built and checked at
DECODE_METHODS = ("init_state", "prefill", "step")
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def is_module_target(name: str) -> bool:
    """A name that names a factory rather than a registered mechanism: it has a colon."""
    return ":" in name


@dataclass
class ModuleSpec(MechanismSpec):
    """A MechanismSpec made from a factory: no analytic cost, claims only as given."""

    target: str = ""
    factory: Callable[..., Any] | None = None
    decodes: bool = False  # follows the step contract (and is causal): decode mode applies
    extra_keys: dict[str, type] = field(default_factory=dict)  # factory parameters outside DESIGN.md's keys

    @property
    def modes(self) -> tuple[str, ...]:
        return MODES if self.decodes else ("forward", "train")


# What a process needs to register a factory target exactly as another process did, without probing it again:
# (target, claims, decodes). The isolated worker gets it with every point of the target (effprof.measure.isolate).
ModuleDefinition = tuple[str, tuple[Claim, ...], bool]
Probe = Callable[[str, tuple[Claim, ...], dict[str, Any]], bool]  # (target, claims, values) -> decodes; ConfigError when it fails


def module_spec(target: str, claims: tuple[Claim, ...] = (), config: dict[str, Any] | None = None,
                probe: Probe | None = None, made_by: tuple[Callable[..., Any], str, str] | None = None) -> ModuleSpec:
    """The registered spec of a factory target, created, probed and registered on first use.

    `claims` are added to the spec's own (a second call may add more, e.g. from --claim).
    `config`: the user's values (--param), which the probe uses where the factory accepts them;
    `NAME.key` entries count for this target only.
    `probe`: where the factory is first built and run (default: here, `_probe`); --isolate runs it in the
    worker, under --timeout and --max-memory (effprof.measure.isolate.IsolatedRunner.probe).
    `made_by`: (factory, summary, family) of a factory given as an object (the Python API, modules/objects.py)
    rather than imported from `target`.
    Raises ConfigError (one line) when the target cannot be imported, is not callable,
    its module fails the probe at small sizes, or a claim names a mode it cannot run.
    """
    if target in list_mechanisms():
        existing = get_spec(target)
        if not isinstance(existing, ModuleSpec):
            raise ConfigError(f"{target!r} is a registered mechanism, not a module factory")
        _check_claim_modes(existing, claims)
        existing.claims = tuple(dict.fromkeys((*existing.claims, *claims)))
        return existing
    spec = _new_spec(target, tuple(claims), made_by)
    values = _own_values(target, spec, config or {})
    if probe is None:
        _probe(spec, values)
    else:
        spec.decodes = spec.causal = bool(probe(target, tuple(claims), values))
    _check_claim_modes(spec, claims)
    add(spec)
    return spec


def _new_spec(target: str, claims: tuple[Claim, ...], made_by: tuple[Callable[..., Any], str, str] | None = None) -> ModuleSpec:
    """The spec of a factory target, not probed (decodes False) and not registered."""
    factory, summary, family = made_by or _resolve(target)
    defaults, extra = _signature_defaults(target, factory)
    spec = ModuleSpec(
        name=target, family=family, summary=summary, paper=Paper("", 0, ""), causal=False, defaults=defaults,
        cost=_no_analytic_cost, claims=tuple(claims), validate=_make_validate(target, extra), target=target,
        factory=factory, extra_keys=extra, equations=inspect.getdoc(factory) or "",
    )
    spec.builder = _make_builder(spec)
    return spec


def _check_claim_modes(spec: ModuleSpec, claims: tuple[Claim, ...]) -> None:
    """A claim in a mode the module cannot run would never be judged: ConfigError, as `effprof check` refuses it."""
    for claim in claims:
        if claim.mode not in spec.modes:
            why = "" if spec.decodes else " (decode needs init_state, prefill, step and a causal forward)"
            raise ConfigError(f"--claim {claim.metric}:{claim.axis}={claim.exponent:g}@{claim.mode}: mode {claim.mode!r} is not "
                              f"available for {spec.target}{why}; accepted: {', '.join(spec.modes)}")


def definition(name: str) -> ModuleDefinition | None:
    """The definition of a registered factory target (None for a registered mechanism or an unknown name)."""
    if not is_module_target(name) or name not in list_mechanisms():
        return None
    spec = get_spec(name)
    return (spec.target, tuple(spec.claims), spec.decodes) if isinstance(spec, ModuleSpec) else None


def register_definition(made: ModuleDefinition) -> ModuleSpec:
    """Register a factory target as `definition` gave it in another process: same claims and modes, not probed again
    (the other process probed it with the user's values; at its own defaults a factory may not even build)."""
    target, claims, decodes = made
    if target in list_mechanisms():
        spec = get_spec(target)
    else:
        spec = _new_spec(target, claims)
        add(spec)
    spec.claims, spec.decodes, spec.causal = tuple(claims), decodes, decodes
    return spec


def resolve_targets(names: list[str], modules: list[str], claims: list[str], config: dict[str, Any] | None = None,
                    probe: Probe | None = None) -> list[str]:
    """The names to measure: `names` then the --module targets, each module registered with the --claim claims.

    A name with a colon among `names` is a module target too; `config` (the --param values) is
    what each new module is probed with, by `probe` (see module_spec). A claim `metric:axis=exponent` applies to every module target; one
    scoped to a target, `TARGET.metric:axis=exponent` (as `--param NAME.key=v` is), to that target only, so a
    linear and a quadratic layer are each judged by their own. Registered mechanisms carry their own claims;
    --claim without a module target, or scoped to a target not measured here, is refused.
    """
    scoped = [split_claim(c) for c in claims]
    targets = [*names, *(m for m in modules if m not in names)]
    factories = [t for t in targets if is_module_target(t)]
    if scoped and not factories:
        raise ConfigError("--claim applies to --module targets, and none is given; registered mechanisms carry their own claims")
    for target, text in scoped:
        if target is not None and target not in factories:
            raise ConfigError(f"--claim {target + '.' + text!r} names {target!r}, which is not a --module target here; "
                              f"accepted prefixes: {', '.join(factories)}")
    for target in factories:
        module_spec(target, tuple(parse_claim(text) for scope, text in scoped if scope in (None, target)), config, probe)
    return targets


def split_claim(text: str) -> tuple[str | None, str]:
    """'mylayers:build_conv.flops:seq_len=1' -> ('mylayers:build_conv', 'flops:seq_len=1'); an unscoped claim -> (None, text).

    The scope is everything before the last '.' that precedes the claim's metric (targets hold colons and dots:
    hf:llama.attention.time:seq_len=2)."""
    head, _, _ = text.partition("=")
    before_axis = head.rpartition(":")[0]  # TARGET.metric, or metric
    target, dot, _ = before_axis.rpartition(".")
    if dot and target:
        return target, text[len(target) + 1:]
    return None, text


def _own_values(target: str, spec: ModuleSpec, config: dict[str, Any]) -> dict[str, Any]:
    """The values of `config` that `spec` accepts: unscoped keys it has, and `target.key` ones."""
    accepted = {**RUN_DEFAULTS, **spec.defaults}
    own = {k: v for k, v in config.items() if "." not in k and (k in accepted or k in OPTIONAL_KEYS)}
    own.update({k.rpartition(".")[2]: v for k, v in config.items() if k.rpartition(".")[0] == target})
    return own


def parse_claim(text: str) -> Claim:
    """`metric:axis=exponent[@mode]` -> Claim, e.g. 'flops:seq_len=2' or 'time:seq_len=1@decode'.

    The mode defaults to forward. Raises ConfigError naming the bad part.
    """
    from effprof.metrics import CLAIMABLE

    head, _, rest = text.partition(":")
    axis, _, value = rest.partition("=")
    exponent_text, _, mode = value.partition("@")
    mode = mode or "forward"
    example = "e.g. flops:seq_len=2 or time:seq_len=1@decode"
    if not head or not axis or not exponent_text:
        raise ConfigError(f"--claim {text!r} is not metric:axis=exponent[@mode]; {example}")
    if head not in CLAIMABLE:
        raise ConfigError(f"--claim {text!r}: metric {head!r} is not one of {', '.join(CLAIMABLE)}{did_you_mean(head, CLAIMABLE)}")
    if axis not in KEYS:
        raise ConfigError(f"--claim {text!r}: axis {axis!r} is not a config key{did_you_mean(axis, KEYS)}; e.g. seq_len, d_model, batch")
    try:
        exponent = float(exponent_text)
    except ValueError:
        raise ConfigError(f"--claim {text!r}: exponent {exponent_text!r} is not a number; {example}") from None
    if not math.isfinite(exponent) or abs(exponent) > 10:
        raise ConfigError(f"--claim {text!r}: exponent {exponent_text!r} must be a number between -10 and 10")
    if mode not in MODES:
        raise ConfigError(f"--claim {text!r}: mode {mode!r} is not one of {', '.join(MODES)}{did_you_mean(mode, MODES)}")
    return Claim(head, axis, exponent, mode)


def _no_analytic_cost(config: dict[str, Any], mode: str) -> Cost:
    """A module has no analytic model: FLOPs unknown (None), no declared state."""
    return Cost(flops=None)


def _resolve(target: str) -> tuple[Callable[..., Any], str, str]:
    """(factory, one-line summary, family) of `pkg.mod:attr` or `hf:model_type.layer`."""
    prefix, _, attr = target.partition(":")
    if prefix == "hf":
        from effprof.modules.hf import hf_factory

        factory, summary = hf_factory(attr)
        return factory, summary, "huggingface"
    if not prefix or not attr:
        raise ConfigError(f"--module {target!r} is not pkg.module:factory or hf:model_type.layer")
    from effprof.measure.guard import user_code
    from effprof.plugins import import_module

    try:
        with user_code():  # an import that calls sys.exit is an error too; torch settings it changes are put back
            module = import_module(prefix)
    except Exception as e:  # the factory's own import error, in one line
        raise ConfigError(f"--module {target!r}: cannot import {prefix!r}: {type(e).__name__}: {' '.join(str(e).split())[:300]}") from None
    factory = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ConfigError(f"--module {target!r}: module {prefix!r} has no attribute {attr!r}")
    if not callable(factory):
        raise ConfigError(f"--module {target!r}: {attr!r} is a {type(factory).__name__}, not a callable factory")
    doc = (inspect.getdoc(factory) or "").strip().splitlines()
    return factory, doc[0] if doc else f"module from {target}", "module"


def _signature_defaults(target: str, factory: Callable[..., Any]) -> tuple[dict[str, Any], dict[str, type]]:
    """The factory's parameters as spec defaults, and the types of those outside DESIGN.md's keys."""
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


def _make_validate(target: str, extra: dict[str, type]) -> Callable[[dict[str, Any]], None]:
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


def _make_builder(spec: ModuleSpec) -> Callable[[dict[str, Any]], Any]:
    factory = spec.factory
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
            raise TypeError(f"{spec.target} returned a {type(made).__name__}; a factory returns an nn.Module or (module, inputs)")
        return made

    return build_module


def _probe(spec: ModuleSpec, values: dict[str, Any]) -> None:
    """Build and run the module at the user's `values` but seq_len 16: one-line ConfigError for what would fail every point.

    The input is made as a point's is (effprof.measure.workload): the point's dtype, on its device.
    Sets spec.decodes (decode mode applies) when the module is causal and has init_state, prefill, step.
    """
    import torch

    from effprof.measure.guard import user_code

    target = spec.target
    try:
        config = resolve_config(spec, {**values, "seq_len": PROBE_SEQ_LEN})
    except ConfigError as e:
        raise ConfigError(f"--module {target!r}: {e}") from None
    from effprof.measure import count_only

    at = f"d_model={config['d_model']}, seq_len={PROBE_SEQ_LEN}" + "".join(
        f", {key}={config[key]}" for key in ("dtype", "device") if config[key] != RUN_DEFAULTS[key])
    # a factory marked count_probe (a whole published model) is probed on fake tensors: its weights are never allocated
    shapes_only = bool(getattr(spec.factory, "count_probe", False))
    try:
        with user_code(), (count_only.counting() if shapes_only else contextlib.nullcontext()):  # sys.exit in the factory
            module = build_with_spec(spec, config).eval()  # is an error; torch settings it changes are put back
            x = probe_input(config)
            with torch.no_grad():
                y = module(x)
            expected = tuple(module.output_shape(x)) if callable(getattr(module, "output_shape", None)) else tuple(x.shape)  # logits
            ok = isinstance(y, torch.Tensor) and tuple(y.shape) == expected
            has_steps = all(callable(getattr(module, m, None)) for m in DECODE_METHODS)
            declared = getattr(module, "causal", None) is True  # a decoder model says so (a probe on fakes has no data to check)
            causal = ok and has_steps and (declared or _is_causal(module, x, y))
    except Exception as e:  # the factory's or the module's error, in one line
        raise ConfigError(f"--module {target!r} fails at {at}: {type(e).__name__}: {' '.join(str(e).split())[:300]}") from None
    if not ok:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ConfigError(f"--module {target!r}: its forward returned {shape}, expected {expected} (batch, seq_len, d_model); "
                          "a module that needs other inputs or returns a tuple: have the factory return (module, inputs)")
    spec.decodes = causal
    spec.causal = spec.decodes  # DESIGN.md: causal mechanisms decode; the harness reads their prefill state


def probe_input(config: dict[str, Any]):
    """x: (batch, seq_len, d_model), seed 0, in the config's dtype on its device: what a point feeds the module."""
    import torch

    x = torch.randn(config["batch"], config["seq_len"], config["d_model"], generator=torch.Generator().manual_seed(0))
    return x.to(device=config["device"], dtype=getattr(torch, config["dtype"]))


def build_with_spec(spec: MechanismSpec, config: dict[str, Any], changes: list[str] | None = None):
    """Build from a spec not (yet) registered, as registry.build does, with seed 0.

    The builder is user code (measure/guard.py): torch settings it changes are put back, each appended to `changes`.
    """
    import torch

    from effprof.measure import count_only
    from effprof.measure.guard import user_code

    with torch.random.fork_rng(devices=[]), user_code(changes):
        torch.manual_seed(0)
        module = spec.builder(config)
    module.config = config
    if count_only.active():
        return count_only.to_device(module, config["device"], getattr(torch, config["dtype"]))
    return module.to(device=config["device"], dtype=getattr(torch, config["dtype"]))


def _is_causal(module: Any, x: Any, y: Any) -> bool:
    """Outputs up to t are unchanged when the tokens after t change (within the rounding of x's dtype)."""
    import torch

    t = x.shape[1] // 2
    x2 = x.clone()
    x2[:, t + 1:] += 1.0
    with torch.no_grad():
        y2 = module(x2)
    eps = torch.finfo(x.dtype).eps  # 1.2e-7 in float32 (tolerance 1e-5, as before), 7.8e-3 in bfloat16
    return bool(torch.allclose(y[:, : t + 1].float(), y2[:, : t + 1].float(), rtol=8 * eps, atol=max(1e-5, 8 * eps)))
