"""Analytic FLOP models of the moe family, op by op as the layers run them (effprof.cost_model's convention).

Glossary: T tokens, A = T·k expert assignments (kept ones, with a capacity limit), d d_model,
e n_experts, k top_k, f d_ff, m = 2 for SwiGLU (gate and up projections) else 1.

A token-choice layer costs, forward:
    router      2·T·d·e + T·e (XW_g + b_g) + 5·T·e (softmax) + T·e (top-k) [+ 2·T·k renormalise]
    experts     A·(2·d·m·f + 2·f·d) (matmuls) + A·f·m (activation)
    combine     A·d (× gate) + A·d (scatter-add)
so FLOPs ∝ k and, but for the router's 2·T·d·e, independent of e. A capacity limit keeps
A = min(T·k, e·C) assignments: exact for a balanced router; a skewed one drops more and
the counted FLOPs fall below this (see the dropped_fraction diagnostic).
"""

from __future__ import annotations

import math
from typing import Any

from effprof.cost_model import Tally, mean_over_decode
from effprof.registry import Cost


def router_cost(t: Tally, tokens: int, d_model: int, n_experts: int, top_k: int | None) -> None:
    """P = softmax(XW_g + b_g), then Top-k(P) (renormalised when k > 1); top_k None: no top-k here."""
    t.linear(tokens, d_model, n_experts, bias=True)  # X W_g + b_g
    t.softmax(tokens * n_experts)
    if top_k is None:
        return
    t.add(tokens * n_experts, 0)  # top-k: a reduction over the e probabilities; backward scatters (free)
    if top_k > 1:
        gates = tokens * top_k
        # G / Σ G: sum, divide; backward: divide (3: two quotients, a product), negate, multiply,
        # the sum's expansion, and the two gradients of G summed
        t.add(2 * gates, 7 * gates)


def ffn_cost(t: Tally, tokens: float, d_model: int, d_ff: int, activation: str) -> None:
    """E(x) over `tokens` rows: x W_in, SiLU(gate) ⊙ up or GELU, · W_out; the input needs a gradient."""
    if activation == "swiglu":
        t.linear(tokens, d_model, 2 * d_ff)  # x [W_gate | W_up]
        t.elementwise(tokens * d_ff, 2, 3)  # SiLU, ⊙ up; backward silu_backward + two products
    else:
        t.linear(tokens, d_model, d_ff)
        t.elementwise(tokens * d_ff, 1, 1)  # GELU; backward gelu_backward
    t.linear(tokens, d_ff, d_model)  # · W_out


def combine_cost(t: Tally, assignments: float, d_model: int) -> None:
    """Gather the assigned rows, weight the expert outputs by their gates, scatter-add them into Y."""
    rows = assignments * d_model
    t.elementwise(rows, 1, 3)  # G · E(x); backward: dE = G·dY (1), dG = Σ_d E·dY (2)
    t.add(rows, rows)  # scatter-add into Y; the gather's backward scatter-adds into dX


def kept_assignments(config: dict[str, Any], tokens: int) -> float:
    """A: T·k, or e·C when the capacity C caps it (a balanced router)."""
    k, e, factor = config["top_k"], config["n_experts"], config["capacity_factor"]
    if factor <= 0:
        return tokens * k
    return min(tokens * k, e * math.ceil(factor * tokens * k / e))


def token_choice_cost(config: dict[str, Any], mode: str) -> Cost:
    d, e, k, f = config["d_model"], config["n_experts"], config["top_k"], config["d_ff"]
    activation, shared = config["activation"], config["n_shared_experts"]

    def tally(tokens: int) -> Tally:
        t = Tally()
        kept = kept_assignments(config, tokens)
        router_cost(t, tokens, d, e, k)
        if config["impl"] == "loop":
            t.add(e * tokens * k, 0)  # one comparison I == i per expert and assignment
            # backward: each expert's gather gives a full-size dX and its gate selection a full-size dG;
            # autograd sums the e of each
            t.add(0, (e - 1) * tokens * (d + k))
        else:
            n = tokens * k
            t.add(n * math.log2(max(n, 2)), 0)  # stable sort of the assignments by expert
        ffn_cost(t, kept, d, f, activation)
        combine_cost(t, kept, d)
        t.add(0, tokens * d)  # dX: the router's and the experts' gradients summed
        if shared:
            ffn_cost(t, tokens, d, shared * f, activation)
            t.add(tokens * d, tokens * d)  # Y + shared experts; backward: a third gradient of X
        return t

    if mode == "decode":  # each step is the layer on the b tokens of one position
        per_step = tally(config["batch"]).forward
        return Cost(mean_over_decode(config, lambda context: per_step), 0.0)
    return Cost(tally(config["batch"] * config["seq_len"]).total(mode), 0.0)
