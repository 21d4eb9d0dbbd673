"""Plugins that break the contract in ways that load silently unless checked (issues #14, #15).

Each is a variant of tests/plugins/short_conv.py with one thing wrong; tests/test_plugins.py
checks that loading or `effprof validate` catches it.
"""

from __future__ import annotations

import dataclasses

from effprof.registry import Claim, Cost
from tests.plugins.short_conv import ShortConv, _spec, short_conv_cost


class StepOff(ShortConv):
    def step(self, x_t, state):  # decode drifts from forward: a bias the forward does not have
        y_t, state = super().step(x_t, state)
        return y_t + 0.5, state


step_off = _spec("step_off", lambda config: StepOff(config["d_model"]))


def _doubled(config: dict, mode: str) -> Cost:
    cost = short_conv_cost(config, mode)
    return Cost(2 * cost.flops, cost.state_bytes)


cost_2x = dataclasses.replace(_spec("cost_2x", lambda config: ShortConv(config["d_model"])), cost=_doubled)


def _prefill_cost_for_decode(config: dict, mode: str) -> Cost:
    """The old README template's mistake: decode answered with the whole sequence's cost, not a token's."""
    return short_conv_cost(config, "forward" if mode == "decode" else mode)


decode_cost_not_per_token = dataclasses.replace(_spec("decode_cost_not_per_token", lambda config: ShortConv(config["d_model"])),
                                                cost=_prefill_cost_for_decode)


def _named(name: str, **changes):
    return dataclasses.replace(_spec(name, lambda config: ShortConv(config["d_model"])), **changes)


builtin_named = _named("softmax_attention")
empty_name = _named("")
escape_name = _named("conv\x1b]0;owned\x07")
claim_metric = _named("claim_metric", claims=(Claim("speed", "seq_len", 1.0, "forward"),))
claim_axis = _named("claim_axis", claims=(Claim("flops", "colour", 1.0, "forward"),))
claim_exponent = _named("claim_exponent", claims=(Claim("flops", "seq_len", float("nan"), "forward"),))
claim_mode = _named("claim_mode", claims=(Claim("flops", "seq_len", 1.0, "sideways"),))
claim_tuple = _named("claim_tuple", claims=(("flops", "seq_len", 1.0, "forward"),))
