"""The mechanism registry: `@register` a `MechanismSpec` on a small builder.

    @register(MechanismSpec(name="softmax_attention", family="attention", ...))
    def build_softmax_attention(config: dict) -> nn.Module:
        return SoftmaxAttention(...)

`build(name, **config)` validates the config (config.resolve_config) and calls the
builder; `get_spec(name)` and `list_mechanisms()` read the registry. A duplicate
name is an error, and an unknown name lists what exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from effprof.config import ConfigError, resolve_config

MODES = ("forward", "train", "decode")
DECODE_METHODS = ("init_state", "prefill", "step")  # what a causal mechanism decodes with (ARCHITECTURE.md § Mechanisms)
AUTO = "auto"  # impl value: the mechanism's fastest faithful form that runs at the point (MechanismSpec.resolve_impl)


class Paper(NamedTuple):
    title: str
    year: int
    arxiv: str


class Claim(NamedTuple):
    """A theoretical exponent: `metric` ∝ `axis`^`exponent` · log(`axis`)^`log_power` in `mode`.

    `where` restricts the claim to configs with these values, e.g. {"impl": "naive"}.
    `log_power` models a log factor (FFT convolution: N log N is exponent 1, log_power 1);
    the fit divides it out before measuring the slope. `note`: where the claimed (leading) term takes
    over, e.g. "quadratic above n ≈ 1,000,000 at the defaults, linear below".
    """

    metric: str
    axis: str
    exponent: float
    mode: str
    where: dict[str, Any] | None = None
    log_power: float = 0.0
    note: str = ""  # what the exponent rests on: where the leading term takes over from a lower one, at which sizes

    def applies_to(self, config: dict[str, Any]) -> bool:
        return all(config.get(k) == v for k, v in (self.where or {}).items())


class Resolution(NamedTuple):
    """The form that runs for impl=auto at one point, and why, where a faster form could not run there."""

    impl: str  # a concrete impl of the spec
    reason: str  # why this form: the fastest here, or what kept the faster one from running


@dataclass(frozen=True)
class Cost:
    """What the analytic model predicts for one point.

    flops: total for the mode (forward; forward+backward; decode: per generated token);
        None where there is no analytic model (a module profiled with --module), never 0.
    state_bytes: decode state after a prefill of seq_len tokens (0 where there is none).
    """

    flops: float | None
    state_bytes: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TestHooks:
    """What the tests use of a mechanism beside its spec: the sizes they build it at on top of tiny ones.

    overrides: small overrides on top of tiny sizes (e.g. a chunk smaller than the test sequence); the
    contract checks (effprof.contract) and tests/helpers.tiny apply them.
    """

    __test__ = False  # not a pytest test class
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MeasureHints:
    """What measurement needs to know of a mechanism's forms beside its cost model.

    loop_impls: impls that loop over tokens or blocks in Python: fvcore's tracer is skipped there at large
    sizes (effprof.measure.fvcore_count).
    """

    loop_impls: tuple[str, ...] = ()


@dataclass(frozen=True)
class MechanismSpec:
    """What a mechanism declares: frozen, and never changed once registered (`register` makes the registered
    spec, with its builder, as a new object; a module factory's added claims register a new spec in its place).

    `tests` and `measure` are what the tests and measurement use of it (TestHooks, MeasureHints), given with
    the spec where it is registered.
    """

    name: str
    family: str
    summary: str
    paper: Paper
    causal: bool
    defaults: dict[str, Any]
    cost: Callable[[dict[str, Any], str], Cost]
    claims: tuple[Claim, ...] = ()
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)  # accepted strings, "impl" included
    validate: Callable[[dict[str, Any]], None] | None = None  # relations between keys
    equations: str = ""  # shown by `effprof explain`; defaults to the module docstring
    # theoretical costs in big-O, for the complexity comparison table:
    # {"prefill": "O(N²d)", "train": ..., "decode": "O(Nd) per token", "state": "O(Nd)"}
    complexity: dict[str, str] = field(default_factory=dict)
    # generative models with their own sampler (diffusion LMs): decode mode calls module.generate()
    generates: bool = False
    # sparse mechanisms: the attention pattern at small n, as per-query key index lists
    # (list of 1-D LongTensors) or a boolean (n_q, n_k) mask; see effprof.render.patterns
    pattern: Callable[[dict[str, Any]], Any] | None = None
    # compiled kernels (effprof/kernels/NAME.c) some of its forms use where they apply; `explain` says whether
    # each is built on this machine
    kernels: tuple[str, ...] = ()
    # where the spec accepts impl=auto (AUTO in choices["impl"]): (config, mode or None) -> the fastest faithful
    # form that runs at that point's device, dtype and mode, and why. Called when a point is built or costed,
    # never when the registry loads (it may build a compiled kernel).
    resolve_impl: Callable[[dict[str, Any], str | None], Resolution] | None = None
    # stacks of other mechanisms (the hybrid family): config -> the line `explain` prints on the forms its layers run
    forms: Callable[[dict[str, Any]], str] | None = None
    builder: Callable[[dict[str, Any]], Any] | None = None  # set by `register` (a new spec), or given with a plain spec
    tests: TestHooks = field(default_factory=TestHooks)
    measure: MeasureHints = field(default_factory=MeasureHints)

    @property
    def impls(self) -> tuple[str, ...]:
        return self.choices.get("impl", ())

    @property
    def modes(self) -> tuple[str, ...]:
        return MODES if self.causal or self.generates else ("forward", "train")

    def summary_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "summary": self.summary,
            "paper": self.paper._asdict(),
            "causal": self.causal,
            "complexity": dict(self.complexity),
            "defaults": dict(self.defaults),
            "choices": {k: list(v) for k, v in self.choices.items()},
            "kernels": list(self.kernels),
            "claims": [
                {"metric": c.metric, "axis": c.axis, "exponent": c.exponent, "mode": c.mode, "where": c.where or {},
                 "log_power": c.log_power, "note": c.note}
                for c in self.claims
            ],
        }


_REGISTRY: dict[str, MechanismSpec] = {}


def register(spec: MechanismSpec) -> Callable[[Callable], Callable]:
    """Decorator: register `spec` with the decorated function as its builder (the registered spec is a copy of
    `spec` with the builder; `spec` itself is left as it was)."""

    def decorate(builder: Callable) -> Callable:
        registered = replace(spec, builder=builder)
        add(registered)
        builder.spec = registered  # so a plugin can name its builder
        return builder

    return decorate


def add(spec: MechanismSpec, replacing: bool = False) -> None:
    """Register a spec whose builder is set; a duplicate name is an error unless `replacing` (a module factory's spec
    registered again with more claims: a new spec in the old one's place, never the old one changed)."""
    if spec.name in _REGISTRY and not replacing:
        raise ValueError(f"mechanism {spec.name!r} is registered twice")
    if spec.builder is None:
        raise ValueError(f"mechanism {spec.name!r} has no builder")
    if AUTO in spec.impls and spec.resolve_impl is None:
        raise ValueError(f"mechanism {spec.name!r} accepts impl={AUTO} but has no resolve_impl")
    for claim in spec.claims:
        if claim.mode not in MODES:
            raise ValueError(f"{spec.name}: claim mode {claim.mode!r} is not one of {MODES}")
    _REGISTRY[spec.name] = spec


# Names the registry does not hold yet but can make on first use: (accepts(name), make(name) -> registered spec).
# effprof.modules adds its factory targets (a name with a colon) when imported, as effprof's package does;
# the registry imports nothing above it.
_MAKERS: list[tuple[Callable[[str], bool], Callable[[str], MechanismSpec]]] = []


def add_maker(accepts: Callable[[str], bool], make: Callable[[str], MechanismSpec]) -> None:
    """Let get_spec make (and register) the specs of names `accepts` says yes to, on first use."""
    if (accepts, make) not in _MAKERS:
        _MAKERS.append((accepts, make))


def unregister(name: str) -> None:
    """Remove a mechanism (a plugin that failed validation)."""
    _REGISTRY.pop(name, None)


def _load() -> None:
    import effprof.mechanisms  # noqa: F401  (registers every family)


def list_mechanisms(family: str | None = None) -> list[str]:
    _load()
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def families() -> list[str]:
    _load()
    return sorted({s.family for s in _REGISTRY.values()})


def get_spec(name: str) -> MechanismSpec:
    _load()
    if name not in _REGISTRY:  # a module factory, pkg.mod:factory or hf:model_type.layer (effprof.modules)
        for accepts, make in _MAKERS:
            if accepts(name):
                return make(name)
    if name not in _REGISTRY:
        raise ConfigError(unknown_mechanism(name))
    return _REGISTRY[name]


def unknown_mechanism(name: str) -> str:
    """The one line for a name that is not registered: a near miss suggested, a module target written with a
    dot where the colon goes (mylayers.build_conv) pointed at pkg.module:factory, else every name."""
    from effprof.suggest import accepted

    _load()
    head, dot, tail = str(name).rpartition(".")
    if dot and head and tail and ":" not in name and not closest_name(name):
        return (f"unknown mechanism {name!r}; a module factory is named pkg.module:factory, with a colon before the factory: "
                f"did you mean {head + ':' + tail!r}?")
    return f"unknown mechanism {name!r}" + accepted(name, _REGISTRY, "effprof list")


def closest_name(name: str) -> str | None:
    from effprof.suggest import closest

    return closest(name, _REGISTRY)


def resolve_impl(spec: MechanismSpec, config: dict[str, Any], mode: str | None = None) -> Resolution:
    """The form that runs at this point: config["impl"] itself, or for impl=auto the spec's choice and why
    (reason "" for a named impl: it runs as named, never swapped for another form)."""
    impl = config.get("impl")
    if impl == AUTO:
        return spec.resolve_impl(config, mode)
    return Resolution(impl, "")


def forms_note(spec: MechanismSpec, config: dict[str, Any]) -> str:
    """One line for `effprof explain`: which form the default runs, per mode at `config`, and why."""
    if spec.forms is not None:
        return spec.forms(config)
    if not spec.impls:
        return f"{spec.name} has one form (no impl to choose)."
    default = spec.defaults.get("impl")
    if AUTO not in spec.impls:
        return (f"default impl={default}: runs at every point; {spec.name} has no faster faithful form that runs only at some "
                f"points (device, dtype, mode), so it offers no impl={AUTO}.")
    return (f"default impl={default}: the fastest faithful form that runs at each point, resolved when the point is built "
            f"(records: impl_resolved, impl_reason); here, device={config.get('device')} dtype={config.get('dtype')}: "
            f"{auto_picks(spec, config, spec.modes)}.")


def auto_picks(spec: MechanismSpec, config: dict[str, Any], modes: Iterable[str]) -> str:
    """What impl=auto runs in each of `modes` at `config`, modes of one pick together: "forward/train → chunked_c (why)"."""
    by_form: dict[Resolution, list[str]] = {}
    for mode in modes:
        by_form.setdefault(spec.resolve_impl(config, mode), []).append(mode)
    return "; ".join(f"{'/'.join(picked)} → {r.impl} ({r.reason})" for r, picked in by_form.items())


def build(name: str, seed: int = 0, **config: Any):
    """Build mechanism `name` as a torch module on config['device'] in config['dtype'].

    Weights are drawn with `seed` (the global RNG is left as it was): the same name,
    config and seed give the same module.
    """
    import torch

    spec = get_spec(name)
    resolved = resolve_config(spec, config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = spec.builder(resolved)
    module.config = resolved
    from effprof.runtime import counting as count_only

    if count_only.active():  # shapes only: the parameters are fakes (runtime/counting.py)
        return count_only.to_device(module, resolved["device"], getattr(torch, resolved["dtype"]))
    return module.to(device=resolved["device"], dtype=getattr(torch, resolved["dtype"]))
