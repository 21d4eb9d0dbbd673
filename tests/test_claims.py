"""Every registered claim, on a real sweep at small sizes: the true exponent passes, 0.25 away fails.

The points of each claim are measured once (only the metric it needs, no timing: no spec claims
time), then judged at the claimed exponent and at ±0.25, ±0.5 through effprof.check's judge, the
same path `effprof check` and assert_scaling take.
"""

from __future__ import annotations

import dataclasses

import pytest

from effprof.api import run_points
from effprof.check import judge, make_check, needed_options
from effprof.registry import get_spec, list_mechanisms
from tests.helpers import tiny

SEQ_LENS = [64, 128, 256, 512, 1024]
GROWTH = [1, 2, 4, 8]
AXIS_VALUES = {"top_k": [1, 2, 4, 8]}  # within the default 8 experts
OFF = (-0.5, -0.25, 0.25, 0.5)
REPRESENTATIVE = {  # the default run: one claim of each kind (quadratic, linear, constant, bytes, other axes)
    ("softmax_attention", 0), ("linear_attention", 0), ("linear_attention", 5), ("mamba", 6),
    ("sliding_window", 2), ("dense_ffn", 4), ("moe_topk", 1),
}


def claim_cases() -> list[tuple[str, int]]:
    return [(name, i) for name in list_mechanisms() for i in range(len(get_spec(name).claims))]


def _values(name: str, axis: str, config: dict) -> list:
    if axis == "seq_len":
        return SEQ_LENS
    if axis in AXIS_VALUES:
        return AXIS_VALUES[axis]
    base = config.get(axis, get_spec(name).defaults.get(axis, 1))
    base = base if isinstance(base, (int, float)) and base > 0 else 1
    return [type(base)(base * g) for g in GROWTH]


def _judged(name: str, index: int):
    spec = get_spec(name)
    claim = spec.claims[index]
    assert claim.metric != "time", "no spec claims time; this test skips timing"
    config = {k: v for k, v in tiny(name).items() if k not in ("seq_len", "batch")}
    config.update(claim.where or {})
    config.pop(claim.axis, None)
    if claim.axis != "seq_len":
        config.setdefault("seq_len", 64)
    check = make_check(name, claim.axis, _values(name, claim.axis, config), claim.metric, claim.exponent,
                       mode=claim.mode, params=config, log_power=claim.log_power)
    records = run_points(check.points, needed_options({claim.metric}))
    results = {offset: judge(dataclasses.replace(check, exponent=claim.exponent + offset), records)
               for offset in (0.0, *OFF)}
    return claim, results


def _assert_claim(name: str, index: int) -> None:
    _, results = _judged(name, index)
    truth = results[0.0]
    assert truth.verdict == "pass", truth.message
    for offset in OFF:
        assert results[offset].verdict == "fail", results[offset].message


@pytest.mark.parametrize("name,index", sorted(REPRESENTATIVE), ids=lambda v: str(v))
def test_representative_claims(name, index):
    _assert_claim(name, index)


@pytest.mark.slow
@pytest.mark.parametrize("name,index", claim_cases(), ids=lambda v: str(v))
def test_every_registered_claim(name, index):
    _assert_claim(name, index)
