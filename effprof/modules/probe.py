"""The first build of a factory target, at small sizes, and building from a spec not (yet) registered.

A factory is built once at seq_len PROBE_SEQ_LEN and run: a factory that raises, a module whose output has the
wrong shape, inputs that do not fit end the command in one line (ConfigError) before anything is measured. The
probe also finds whether the module decodes (causal, with init_state, prefill and step).
"""

from __future__ import annotations

import contextlib
from typing import Any

from effprof.config import RUN_DEFAULTS, ConfigError, resolve_config
from effprof.registry import DECODE_METHODS, MechanismSpec
from effprof.suggest import one_line

PROBE_SEQ_LEN = 16  # the size a factory is first built and checked at


def probe(spec: MechanismSpec, values: dict[str, Any]) -> bool:
    """Build and run the module at the user's `values` but seq_len 16: one-line ConfigError for what would fail every point.

    The input is made as a point's is (effprof.measure.workload): the point's dtype, on its device.
    Returns whether decode mode applies: the module is causal and has init_state, prefill, step (the caller makes
    the spec with it; the spec is frozen).
    """
    import torch

    from effprof.mechanisms.base import is_causal
    from effprof.runtime.guard import user_code

    target = spec.target
    try:
        config = resolve_config(spec, {**values, "seq_len": PROBE_SEQ_LEN})
    except ConfigError as e:
        raise ConfigError(f"--module {target!r}: {e}") from None
    from effprof.runtime import counting as count_only

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
            causal = ok and has_steps and (declared or is_causal(module, x, y))
    except Exception as e:  # the factory's or the module's error, in one line
        raise ConfigError(f"--module {target!r} fails at {at}: {type(e).__name__}: {one_line(e, 300)}") from None
    if not ok:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ConfigError(f"--module {target!r}: its forward returned {shape}, expected {expected} (batch, seq_len, d_model); "
                          "a module that needs other inputs or returns a tuple: have the factory return (module, inputs)")
    return causal  # causal mechanisms decode (ARCHITECTURE.md § Mechanisms); the harness reads their prefill state


def probe_input(config: dict[str, Any]):
    """x: (batch, seq_len, d_model), seed 0, in the config's dtype on its device: what a point feeds the module."""
    import torch

    x = torch.randn(config["batch"], config["seq_len"], config["d_model"], generator=torch.Generator().manual_seed(0))
    return x.to(device=config["device"], dtype=getattr(torch, config["dtype"]))


def build_with_spec(spec: MechanismSpec, config: dict[str, Any], changes: list[str] | None = None):
    """Build from a spec not (yet) registered, as registry.build does, with seed 0.

    The builder is user code (runtime/guard.py): torch settings it changes are put back, each appended to `changes`.
    """
    import torch

    from effprof.runtime import counting as count_only
    from effprof.runtime.guard import user_code

    with torch.random.fork_rng(devices=[]), user_code(changes):
        torch.manual_seed(0)
        module = spec.builder(config)
    module.config = config
    if count_only.active():
        return count_only.to_device(module, config["device"], getattr(torch, config["dtype"]))
    return module.to(device=config["device"], dtype=getattr(torch, config["dtype"]))


