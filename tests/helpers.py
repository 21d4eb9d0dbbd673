"""Shared test helpers: every (mechanism, impl) pair and tiny configs."""

from __future__ import annotations

from typing import Any

import effprof
from effprof.contract import TINY  # noqa: F401  (the tests' tiny sizes are the contract checks')
from effprof.registry import get_spec, list_mechanisms


def runs_here(name: str, impl: str | None) -> bool:
    """Whether (name, impl) can be built on this machine: a compiled impl needs its kernel built
    (test_ssm tests what happens where it is not)."""
    from effprof import kernels
    from effprof.mechanisms.ssm.selective_scan import COMPILED

    return not (name == "mamba" and impl == COMPILED) or kernels.load("selective_scan") is not None


def impl_cases() -> list[tuple[str, dict[str, Any]]]:
    """(name, overrides) for every mechanism and each of its impls that runs here."""
    cases = []
    for name in list_mechanisms():
        spec = get_spec(name)
        for impl in spec.impls or (None,):
            if runs_here(name, impl):
                cases.append((name, {} if impl is None else {"impl": impl}))
    return cases


def case_id(case: tuple[str, dict[str, Any]]) -> str:
    name, overrides = case
    return name + "".join(f"-{v}" for v in overrides.values())


def tiny(name: str, **overrides: Any) -> dict[str, Any]:
    """Tiny sizes every mechanism accepts, with the spec's own test sizes on top."""
    spec = get_spec(name)
    config = {**TINY, **spec.tests.overrides}
    config.update(overrides)
    return config


def build_tiny(name: str, **overrides: Any):
    return effprof.build(name, **tiny(name, **overrides))
