"""Check a student's implementation of a week-16 project against effprof's reference, in plain words.

The convention (every template states it): the student's file defines

    def build(config: dict, weights: dict[str, torch.Tensor]) -> torch.nn.Module

`config` is the reference's resolved config (d_model, n_heads, head_dim, ...), `weights` the reference
module's state_dict() at that config, so both compute with the same weights. The module keeps the
(batch, seq_len, d_model) shape and, for a causal mechanism, has init_state(batch), prefill(x) -> (y, state)
and step(x_t, state) -> (y_t, state), as every effprof mechanism does (effprof.mechanisms.base).

The checks, in order, each with what is wrong and where:
  1. the contract `effprof validate` runs (effprof.contract.contract_checks): shape, causality, decode methods,
     prefill + steps = forward, init_state + steps = forward, state bytes = the reference's cost model;
  2. outputs equal to the reference's on the same weights and input: where they first part (token, and the
     first shared sub-layer whose output differs), and whether the outputs are the reference's times a
     per-token (per-head) factor, i.e. a wrong normalisation;
  3. gradients equal to the reference's, for the input and each named weight;
  4. the claimed scaling: the student's form measured by effprof's runner at growing seq_len (counted FLOPs,
     decode state bytes), fitted by effprof.analyse.fit, judged against the reference's claims.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from effprof.config import ConfigError
from effprof.contract import TINY, ContractCheck, contract_checks
from effprof.store.records import is_number as _finite
from effprof.suggest import one_line

TOLERANCE = 1e-4  # as the contract's decode checks
SCALING_SIZES = (128, 256, 512, 1024)
_counter = itertools.count()

# What a failed contract check means for a student, by the check's name (effprof.contract.contract_checks).
HINTS = {
    "causal": "your output at token t changes when tokens after t change: a query sees the future "
              "(a missing causal mask, or a sum over all tokens instead of a running sum)",
    "decode: prefill + steps = forward": "your step() does not continue from prefill()'s state as forward() computes: "
                                         "the recurrent (decode) form disagrees with the parallel one",
    "decode: init_state + steps = forward": "stepping from init_state() token by token disagrees with forward(): "
                                            "the recurrent form is not the parallel one",
    "decode: state bytes": "your decode state is not the mechanism's size: a state that grows with the tokens seen "
                           "(keeping past keys or inputs) is a cache, not the fixed-size state of the recurrence",
    "forward: keeps": "forward(x) must return (batch, seq_len, d_model), like x",
    "decode: has": "a causal mechanism decodes: define init_state(batch), prefill(x) and step(x_t, state)",
}


class StudentError(ConfigError):
    """A student file that cannot be loaded (one line, exit 2)."""


def load_student(target: str) -> Callable[..., Any]:
    """FILE.py:build -> the build function (the file is imported: it is the user's own code, named by them)."""
    path, sep, attr = target.rpartition(":")
    if not sep or not path.endswith(".py") or not attr.isidentifier():
        raise StudentError(f"--check {target!r} is not FILE.py:FUNCTION; e.g. --check my_linear.py:build")
    file = Path(path)
    if not file.is_file():
        raise StudentError(f"--check {target!r}: no file {path!r}")
    name = f"effprof_student_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the student's import error, in one line
        raise StudentError(f"--check {target!r}: importing {path!r} raised {type(e).__name__}: {one_line(e, 300)}") from None
    build = getattr(module, attr, None)
    if not callable(build):
        raise StudentError(f"--check {target!r}: {path!r} has no function {attr!r}")
    return build


def student_spec(project, build: Callable[..., Any]):
    """The reference's spec with the student's builder: same defaults, cost model and claims, one impl."""
    from effprof.modules import build_with_spec
    from effprof.registry import MeasureHints, TestHooks, get_spec

    reference = get_spec(project.reference)
    defaults = {**reference.defaults, **project.config}
    overrides = {k: v for k, v in reference.tests.overrides.items() if k not in project.config}  # the project's form wins
    choices = dict(reference.choices)
    if "impl" in choices:
        choices["impl"] = (defaults["impl"],)

    def builder(config: dict[str, Any]):
        import torch

        ref = build_with_spec(reference, config)  # seed 0: the weights the student receives
        weights = {k: v.detach().clone() for k, v in ref.state_dict().items()}
        module = build(dict(config), weights)
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"build(config, weights) returned {type(module).__name__}, not a torch.nn.Module")
        return module

    return dataclasses.replace(reference, name=f"yours_{project.reference}", defaults=defaults, choices=choices,
                               builder=builder, pattern=None, kernels=(), measure=MeasureHints(), tests=TestHooks(overrides))


def check_project(project, build: Callable[..., Any], sizes: tuple[int, ...] = SCALING_SIZES,
                  scaling_config: dict[str, Any] | None = None) -> list[ContractCheck]:
    """`sizes`: the seq_len values of the scaling measurement (the project may add other axes, e.g. MoE's top_k)."""
    from effprof.course.threads import one_thread

    with one_thread():
        return _check(project, build, sizes, scaling_config)


def _check(project, build: Callable[..., Any], sizes: tuple[int, ...], scaling_config: dict[str, Any] | None) -> list[ContractCheck]:
    """Every check, in order; a later check is skipped (and said so) when the module cannot run at all."""
    spec = student_spec(project, build)
    results = [_explained(r) for r in contract_checks(spec, flops=False)]
    if not any(r.name.startswith("forward: keeps") and r.passed for r in results):
        return results
    from effprof.config import resolve_config

    config = resolve_config(spec, {**TINY, **spec.tests.overrides})
    results.append(_run("outputs: equal to the reference's on the same weights", lambda: output_problem(spec, project, config)))
    results.append(_run("gradients: equal to the reference's", lambda: gradient_problem(spec, project, config)))
    axes = {"seq_len": tuple(sizes), **project.scaling_axes}
    results.extend(scaling_results(spec, axes, scaling_config or project.scaling_config))
    return results


def _explained(result: ContractCheck) -> ContractCheck:
    if result.passed:
        return result
    hint = next((text for prefix, text in HINTS.items() if result.name.startswith(prefix)), "")
    return ContractCheck(result.name, False, f"{hint} ({result.detail})" if hint else result.detail)


def _run(name: str, check: Callable[[], str]) -> ContractCheck:
    try:
        problem = check()
    except Exception as e:  # the student's error is a failed check, in one line
        problem = f"raised {type(e).__name__}: {one_line(e, 300)}"
    return ContractCheck(name, not problem, problem)


def _pair(spec, project, config: dict[str, Any]):
    """(student module, reference module) at config, on the same weights, and an input x."""
    import torch

    from effprof.modules import build_with_spec
    from effprof.registry import get_spec

    reference = build_with_spec(get_spec(project.reference), config).eval()
    student = build_with_spec(spec, config).eval()
    x = torch.randn(config["batch"], config["seq_len"], config["d_model"], generator=torch.Generator().manual_seed(2))
    return student, reference, x


def _outputs_by_name(module, x) -> dict[str, Any]:
    """Output of every named sub-module during module(x), in the order they ran."""
    import torch

    seen: dict[str, Any] = {}
    handles = []
    for name, sub in module.named_modules():
        if name:
            handles.append(sub.register_forward_hook(lambda m, i, o, name=name: _keep(seen, name, o)))
            handles.append(sub.register_forward_pre_hook(lambda m, i, name=name: _keep(seen, name + " (input)", i[0] if i else None)))
    try:
        with torch.no_grad():
            seen["(output)"] = module(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _keep(seen: dict[str, Any], name: str, value: Any) -> None:
    """A hook's record of a value: the first call's (a sub-layer used twice keeps its first); returns None, so the
    module's own output is never replaced."""
    seen.setdefault(name, value)


def _differs(a: Any, b: Any, any_order: bool = False) -> bool:
    """Whether two values differ beyond the tolerance; with `any_order`, the same numbers in another order (tokens
    routed batch-major instead of position-major) count as equal."""
    import torch

    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return False
    if a.shape != b.shape:
        return True
    a, b = a.float(), b.float()
    if any_order:
        a, b = a.flatten().sort().values, b.flatten().sort().values
    return not torch.allclose(a, b, rtol=TOLERANCE, atol=TOLERANCE)


def output_problem(spec, project, config: dict[str, Any]) -> str:
    """'' when the student's output equals the reference's; else what differs, where, and what it looks like."""

    student, reference, x = _pair(spec, project, config)
    ours, theirs = _outputs_by_name(student, x), _outputs_by_name(reference, x)
    y, expected = ours["(output)"], theirs["(output)"]
    if not _differs(y, expected):
        return ""
    gap = (y - expected).abs()  # (b, n, d)
    worst = divmod(int(gap.argmax()), gap.shape[1] * gap.shape[2])
    token, channel = divmod(worst[1], gap.shape[2])
    bad_tokens = (gap.amax(dim=(0, 2)) > TOLERANCE).nonzero()[:, 0]
    text = (f"your output differs from the reference's (largest difference {float(gap.max()):.3g} at batch {worst[0]}, token {token}, "
            f"channel {channel}); tokens {int(bad_tokens[0])}..{int(bad_tokens[-1])} differ")
    if int(bad_tokens[0]) > 0:
        text += f", tokens before {int(bad_tokens[0])} agree (look at how past tokens are combined: their weights, the running sums)"
    shared = [name for name in theirs if name in ours and name != "(output)"]
    parted = next((name for name in shared if _differs(ours[name], theirs[name], any_order=True)), None)
    agreed = [name for name in shared if not name.endswith("(input)")][:6]
    if parted is not None:
        text += f"; the first shared sub-layer value that differs is {parted}"
    elif agreed:
        text += f"; every shared sub-layer agrees ({', '.join(agreed)}): the difference is in your own code between them"
    scaled = _per_token_factor(ours, theirs, parted, config)
    if scaled:
        text += f"; {scaled}"
    return text


def _per_token_factor(ours: dict[str, Any], theirs: dict[str, Any], parted: str | None, config: dict[str, Any]) -> str:
    """When a value is the reference's times a factor per token (and head): a wrong normalisation."""
    import torch

    name = parted if parted is not None and parted.endswith("(input)") else "(output)"
    a, b = ours.get(name), theirs.get(name)
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.shape != b.shape or a.dim() != 3:
        return ""
    heads = config.get("n_heads") if name != "(output)" else 1
    heads = heads if isinstance(heads, int) and heads > 0 and a.shape[-1] % heads == 0 else 1
    a, b = (t.float().reshape(*t.shape[:2], heads, -1) for t in (a, b))  # (b, n, h, d)
    factor = (a * b).sum(-1) / (b * b).sum(-1).clamp_min(1e-30)  # α per (batch, token, head)
    residual = (a - factor[..., None] * b).norm(dim=-1) / b.norm(dim=-1).clamp_min(1e-30)
    if float(residual.max()) > 1e-3 or float((factor - 1).abs().max()) < 1e-3:
        return ""
    where = "per token and head" if heads > 1 else "per token"
    return (f"at {name} your values are the reference's times a factor {where} (from {float(factor.min()):.3g} to {float(factor.max()):.3g}): "
            "the normalisation is wrong (a denominator or gate sum missing or different)")


def gradient_problem(spec, project, config: dict[str, Any]) -> str:
    """'' when the gradients of a fixed loss match the reference's for the input and each named weight."""
    import torch

    student, reference, x = _pair(spec, project, config)
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))  # dL/dy
    grads = []
    for module in (student, reference):
        xi = x.clone().requires_grad_(True)
        (module(xi) * upstream).sum().backward()
        grads.append((xi.grad, {name: p.grad for name, p in module.named_parameters()}))
    (gx, ours), (gx_ref, theirs) = grads
    if gx is None:
        return "no gradient reaches the input: your forward detaches it (torch.no_grad, .detach(), .item())"
    if _differs(gx, gx_ref):
        return f"the gradient with respect to the input differs (largest difference {float((gx - gx_ref).abs().max()):.3g})"
    for name, g in theirs.items():
        if g is None or name not in ours:
            continue
        if ours[name] is None:
            return f"no gradient reaches the weight {name}: it is used detached, or not used"
        if _differs(ours[name], g):
            return f"the gradient of {name} differs (largest difference {float((ours[name] - g).abs().max()):.3g})"
    return ""


SCALED = {"flops": "FLOPs", "state_bytes": "decode state"}
HOW = {  # (metric, mode, measured above the claim)
    ("flops", "forward", True): "your form does more work per token as N grows than the mechanism claims: a dense n×n product "
                                "(masking a dense matrix keeps it dense; gather the allowed keys or carry a state instead)",
    ("flops", "decode", True): "each generated token costs more as the context grows: your step() redoes work over the past "
                               "tokens instead of updating a state",
    ("state_bytes", "decode", True): "your decode state grows with N: keep the fixed-size state of the recurrence, not the past tokens",
    ("flops", "top_k"): "your layer's work does not follow k: every expert runs on every token (compute must follow the k "
                        "chosen experts; zeroing the unchosen ones after running them saves nothing)",
}


def scaling_results(spec, axes: dict[str, tuple[Any, ...]], config: dict[str, Any]) -> list[ContractCheck]:
    """The student's form measured by effprof's runner along each axis (seq_len in forward and decode, the others in
    forward, the rest at `config`), fitted by effprof.analyse.fit, judged against the reference's claims on that axis."""
    results = []
    for axis, values in axes.items():
        results.extend(_scaling_along(spec, axis, values, config))
    if not results:
        results.append(ContractCheck("scaling: the reference's claims", False, "no claim of the reference could be judged from the measurements"))
    return results


def _scaling_along(spec, axis: str, sizes: tuple[Any, ...], config: dict[str, Any]) -> list[ContractCheck]:
    from effprof.analyse.fit import fit_frame
    from effprof.measure.harness import Options
    from effprof.registry import add, unregister
    from effprof.runner import plan, run_points
    from effprof.store.records import to_frame

    modes = [m for m in ("forward", "decode") if m in spec.modes and (axis == "seq_len" or m == "forward")]
    add(spec)
    try:
        points = plan([spec.name], {axis: list(sizes)}, modes, {k: v for k, v in config.items() if k != axis})
        records = run_points(points, Options(timing=False, memory=False, fvcore=False, roofline=False))
    finally:
        unregister(spec.name)
    failed = [r for r in records if r.get("status") != "ok"]
    if failed:
        return [ContractCheck(f"scaling: measured at growing {axis}", False,
                            f"{failed[0]['mode']} at {axis}={failed[0].get(axis)} failed: {failed[0].get('error', '')[:300]}")]
    fits = fit_frame(to_frame(records))
    results = []
    for row in fits.to_dict("records"):
        if row["axis"] != axis or row["metric"] not in SCALED or row.get("verdict") in (None, "no-claim"):
            continue
        if row["metric"] == "state_bytes" and row["mode"] != "decode":
            continue  # the same figure in every mode: judged once, with decode
        measured = row.get("leading_exponent") if _finite(row.get("leading_exponent")) else row.get("exponent")
        symbol = "N" if axis == "seq_len" else axis
        name = f"scaling: {SCALED[row['metric']]} in {row['mode']} ∝ {symbol}^{row['claimed']:g}"
        if row["verdict"] == "pass":
            results.append(ContractCheck(name, True, f"measured ∝ {symbol}^{measured:.2f} over {axis} {', '.join(map(str, sizes))}"))
            continue
        how = HOW.get((row["metric"], row["mode"], bool(_finite(measured) and measured > row["claimed"])) if axis == "seq_len"
                      else (row["metric"], axis), "your form's cost does not grow as the mechanism's does")
        results.append(ContractCheck(name, False, f"measured ∝ {symbol}^{measured:.2f}, claimed {symbol}^{row['claimed']:g} ({row['verdict']}: "
                                                f"{row.get('verdict_reason') or 'see effprof fit'}); {how}"))
    return results
