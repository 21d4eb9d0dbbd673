"""A plugin mechanism as a new user writes one (issue 25): no analytic cost model (Cost(flops=None): FLOPs are counted
only) and a config key of its own, `kernel`, never declared with effprof.config.declare_key.

    effprof --plugin tests.plugins.counted_conv:build_counted_conv check checks.toml
    effprof validate tests.plugins.counted_conv:build_counted_conv
"""

from __future__ import annotations

from effprof.registry import Claim, Cost, MechanismSpec, Paper, register
from tests.plugins.mylayers import GatedConv


def _counted_only(config: dict, mode: str) -> Cost:
    """No analytic model: FLOPs are counted at the dispatcher only."""
    return Cost(flops=None)


@register(MechanismSpec(
    name="counted_conv", family="plugin", summary="a gated convolution with no analytic cost model",
    paper=Paper("", 0, ""), causal=False, defaults={"kernel": 4}, cost=_counted_only,
    claims=(Claim("flops", "seq_len", 1.0, "forward"),),
))
def build_counted_conv(config: dict) -> GatedConv:
    return GatedConv(config["d_model"], config["kernel"])
