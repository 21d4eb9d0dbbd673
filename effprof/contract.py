"""The contract a mechanism meets, checked on one spec: what `effprof validate PLUGIN` runs and reports.

Every test effprof runs on its own mechanisms (tests/test_mechanisms.py uses these very checks), for a
plugin's: a cost model that answers for every mode, a forward that keeps the (batch, seq_len, d_model)
shape, the declared causality, decode methods for causal ones, prefill + steps equal to forward, every
impl computing the same function, state bytes equal to the cost model's, and (`flops=True`) counted FLOPs
against the cost model in every mode and a schema-valid record per mode. Each is a ContractCheck: its
name, whether it passed, what it found.

`validate(spec)` is the structural part, raising PluginError on the first failure: the commands pass it to
effprof.plugins.load_plugin (`check=validate`) so a plugin that breaks the contract is refused in one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from effprof.config import KEYS
from effprof.plugins import PluginError
from effprof.registry import DECODE_METHODS, Cost, MechanismSpec
from effprof.suggest import one_line

TINY = {"batch": 2, "seq_len": 24, "d_model": 32}  # the structural checks' sizes (the tests' tiny sizes: tests/helpers.py)
FLOP_SEQ_LEN = 128  # FLOP checks: the spec's default sizes at this sequence length
FLOP_TOLERANCE = 0.02


def validate(spec: MechanismSpec) -> None:
    """The structural checks of `contract_checks` (what loading a plugin runs); the first that fails raises PluginError."""
    for result in contract_checks(spec, flops=False):
        if not result.passed:
            raise PluginError(f"plugin mechanism {spec.name!r}: {result.detail}")


@dataclass(frozen=True)
class ContractCheck:
    """One contract test: its name, whether it passed, and what it found."""

    name: str
    passed: bool
    detail: str = ""


def contract_checks(spec: MechanismSpec, flops: bool = True) -> list[ContractCheck]:
    """Every contract test effprof runs on its own mechanisms (tests/test_mechanisms.py), for one spec.

    Structural (tiny sizes): cost model answers in every mode, output shape, causality,
    decode methods, prefill + steps = forward, init_state + steps = forward, every impl
    computes the same function, state bytes = the cost model's. With `flops`: counted
    FLOPs within 2% of the cost model in forward and train, no uncounted op, and the
    decode cost per generated token. A check whose prerequisite failed is not run.
    """
    import torch

    from effprof.config import resolve_config

    results: list[ContractCheck] = []

    from effprof.runtime.guard import user_code

    changes: list[str] = []  # torch settings the mechanism's code changed (put back after each check)

    def run(name: str, check: Callable[[], str]) -> bool:
        try:
            with user_code(changes):  # sys.exit in the plugin fails the check; torch settings it changes are put back
                problem = check()
        except Exception as e:  # a plugin's error is a failed check, reported in one line
            problem = f"raised {type(e).__name__}: {one_line(e, 300)}"
        results.append(ContractCheck(name, not problem, problem or ""))
        return not problem

    tiny: dict[str, Any] = {}

    def config_check() -> str:
        tiny.update(resolve_config(spec, {**TINY, **spec.tests.overrides}))
        return ""

    if not run("config: defaults validate", config_check):
        return results
    own = [k for k in spec.defaults if k not in KEYS]
    if own:  # a plugin's own keys: settable (--param, a check's params) as they are; an axis only once declared
        results.append(ContractCheck("config: own keys", True, f"{', '.join(own)}: settable without declaring; to sweep one or "
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
        sized = resolve_config(spec, {**spec.tests.overrides, "seq_len": FLOP_SEQ_LEN})
        for mode in spec.modes:
            if spec.cost(sized, mode).flops is None:  # Cost(flops=None): no analytic model, FLOPs are counted only
                run(f"flops: every op counted in {mode} (no analytic model: Cost(flops=None))", lambda mode=mode: _flops_problem(spec, sized, mode, changes))
                continue
            label = "decode: cost per generated token = counted" if mode == "decode" else f"flops: counted = analytic in {mode} (±2%)"
            run(label, lambda mode=mode: _flops_problem(spec, sized, mode, changes))
        for mode in spec.modes:
            run(f"records: the {mode} record passes the record schema", lambda mode=mode: records_problem(spec, tiny, mode, changes))
        results.append(ContractCheck("torch state: leaves torch's global settings as they were", not changes, "; ".join(changes)))
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
    from effprof.store.records import encode, validate_record

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
    from effprof.mechanisms.base import is_causal

    if not is_causal(module, x):
        return "declares causal=True but its outputs before t depend on tokens after t"
    return ""


def _methods_problem(module) -> str:
    missing = [m for m in DECODE_METHODS if not callable(getattr(module, m, None))]
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
