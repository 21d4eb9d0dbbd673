"""ModuleSpec: the spec of a factory target (`pkg.mod:factory`, `hf:model_type.layer`), made, probed and registered on
first use; its definition, so an isolated worker registers it as this process did; and the targets of a command."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from effprof.config import OPTIONAL_KEYS, RUN_DEFAULTS, ConfigError
from effprof.modules.claims import parse_claim, split_claim
from effprof.modules.factory import make_builder, make_validate, no_analytic_cost, resolve_factory, signature_defaults
from effprof.modules.probe import probe as probe_here
from effprof.registry import MODES, Claim, MechanismSpec, Paper, add, get_spec, list_mechanisms


def is_module_target(name: str) -> bool:
    """A name that names a factory rather than a registered mechanism: it has a colon."""
    return ":" in name


@dataclass(frozen=True)
class ModuleSpec(MechanismSpec):
    """A MechanismSpec made from a factory: no analytic cost, claims only as given. Frozen as every spec: added
    claims and the probe's finding (decodes) make a new spec, registered in the old one's place."""

    target: str = ""
    factory: Callable[..., Any] | None = None
    decodes: bool = False  # follows the step contract (and is causal): decode mode applies
    extra_keys: dict[str, type] = field(default_factory=dict)  # factory parameters outside effprof.config.KEYS

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
    `probe`: where the factory is first built and run (default: here, effprof.modules.probe.probe); --isolate runs it in the
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
        merged = tuple(dict.fromkeys((*existing.claims, *claims)))
        if merged == existing.claims:
            return existing
        grown = replace(existing, claims=merged)
        add(grown, replacing=True)
        return grown
    spec = _new_spec(target, tuple(claims), made_by)
    values = _own_values(target, spec, config or {})
    decodes = probe_here(spec, values) if probe is None else bool(probe(target, tuple(claims), values))
    spec = replace(spec, decodes=decodes, causal=decodes)  # causal mechanisms decode; the harness reads their prefill state
    _check_claim_modes(spec, claims)
    add(spec)
    return spec


def _new_spec(target: str, claims: tuple[Claim, ...], made_by: tuple[Callable[..., Any], str, str] | None = None) -> ModuleSpec:
    """The spec of a factory target, not probed (decodes False) and not registered."""
    factory, summary, family = made_by or resolve_factory(target)
    defaults, extra = signature_defaults(target, factory)
    return ModuleSpec(
        name=target, family=family, summary=summary, paper=Paper("", 0, ""), causal=False, defaults=defaults,
        cost=no_analytic_cost, claims=tuple(claims), validate=make_validate(target, extra), target=target,
        factory=factory, extra_keys=extra, equations=inspect.getdoc(factory) or "", builder=make_builder(target, factory),
    )


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
    base = get_spec(target) if target in list_mechanisms() else _new_spec(target, claims)
    spec = replace(base, claims=tuple(claims), decodes=decodes, causal=decodes)
    add(spec, replacing=True)
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


def _own_values(target: str, spec: ModuleSpec, config: dict[str, Any]) -> dict[str, Any]:
    """The values of `config` that `spec` accepts: unscoped keys it has, and `target.key` ones."""
    accepted = {**RUN_DEFAULTS, **spec.defaults}
    own = {k: v for k, v in config.items() if "." not in k and (k in accepted or k in OPTIONAL_KEYS)}
    own.update({k.rpartition(".")[2]: v for k, v in config.items() if k.rpartition(".")[0] == target})
    return own
