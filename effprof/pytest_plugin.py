"""pytest plugin (entry point pytest11 `effprof`): assert a scaling claim in one line.

    from effprof.pytest_plugin import assert_scaling

    def test_linear_attention_is_linear():
        assert_scaling("linear_attention", axis="seq_len", values=[256, 512, 1024, 2048],
                       metric="flops", exponent=1.0, tol=0.1, d_model=64, impl="chunked")

    def test_softmax_is_quadratic(effprof_scaling):   # the same function, as a fixture
        effprof_scaling("softmax_attention", axis="seq_len", values=[128, 256, 512], metric="flops", exponent=2.0)

The points are measured, fitted and judged exactly as `effprof check` does (effprof.check),
measuring only what the metric needs. A claim that does not hold raises AssertionError
with the measured exponent, its CI and the claim; so does an inconclusive one (the data cannot
identify the dominant term: the message says why and which sizes would decide); a bad argument raises ConfigError.
Nothing heavy is imported until a check runs: pytest loads this module in every session.
"""

from __future__ import annotations

from typing import Any

import pytest

from effprof.analyse.outcome import UNJUDGED


def assert_scaling(mechanism: str, axis: str, values: list, metric: str, exponent: float, tol: float | None = None,
                   mode: str = "forward", params: dict[str, Any] | None = None, log_power: float = 0.0,
                   max_time: float = 0.5, **config: Any) -> dict[str, Any]:
    """Measure `mechanism` at each of `values` of `axis` and assert `metric` ∝ `axis`^`exponent` (± `tol`).

    Config overrides come as `params={...}` and/or keyword arguments (d_model=64, impl="chunked").
    Returns the fit row (exponent, ci_low, ci_high, leading_exponent, ...) when the claim holds.
    """
    __tracebackhide__ = True
    from effprof.check import make_check, run_check

    # The arguments are checked where `effprof check` checks a claims file (make_check, Options): ConfigError names the bad one.
    overrides = {**params, **config} if isinstance(params, dict) else (params if params is not None else config)
    check = make_check(mechanism, axis, values, metric, exponent, tol, mode, overrides, log_power)
    result = run_check(check, max_time=max_time)
    if result.verdict in UNJUDGED:  # effprof.analyse.outcome: the data cannot judge the claim
        raise AssertionError(f"{result.verdict} (the data cannot judge the claim): {result.message}")
    if result.failed or result.verdict != "pass":
        raise AssertionError(result.message)
    return result.fit


@pytest.fixture
def effprof_scaling():
    """`assert_scaling`, for tests that prefer a fixture to an import."""
    return assert_scaling
