"""Expert-choice mixture of experts: each expert picks its top-C tokens (Zhou et al. 2022).

    S = softmax(X W_g + b_g)          token-to-expert affinities               (T × e)
    G, I = Top-C(Sᵀ) row by row       each expert's C best tokens and scores   (e × C)
    Y = Σ_i Σ_{j<C} G_ij · E_i(x_{I_ij}) scattered back to token I_ij          (T × d)
    C = ⌈T · capacity_factor / e⌉     (capacity_factor = average experts per token)

Glossary: T = batch·seq_len tokens (all of them compete, as in the paper), d d_model,
e n_experts, f d_ff, E_i expert i, G gates, I chosen token indices.

Every expert processes exactly C tokens: perfect load balance by construction, and
FLOPs ≈ e·C·(6·d·f) = T·capacity_factor·6·d·f (SwiGLU), ∝ capacity_factor and ∝ e⁰.
A token may be chosen by several experts or by none (its expert contribution is then
0: `dropped_fraction` reports the share of such tokens). Which tokens an expert takes
depends on every token of the batch, later positions included, so the layer is not
causal (causal=False): it has no decode.

Forms (config `impl`), the same function:
- loop:    for each expert i: gather its C tokens, run E_i, scatter-add G_i·E_i(x).
- batched: gather all e·C tokens as one (e, C, d) tensor; the experts run as one pair of
           batched matmuls over the expert axis (no Python loop); one scatter-add.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from effprof.config import ConfigError
from effprof.cost_model import Tally
from effprof.mechanisms.base import Mechanism
from effprof.mechanisms.moe.cost import ffn_cost, router_cost
from effprof.mechanisms.moe.diagnostics import RoutingDiagnostics
from effprof.mechanisms.moe.experts import ACTIVATIONS, Experts, FeedForward
from effprof.mechanisms.moe.router import Router
from effprof.registry import Claim, Cost, MeasureHints, MechanismSpec, Paper, TestHooks, register

IMPLS = ("batched", "loop")


def expert_choice_capacity(tokens: int, n_experts: int, capacity_factor: float) -> int:
    """C = ⌈T · capacity_factor / e⌉ tokens per expert, at most T."""
    return min(tokens, math.ceil(tokens * capacity_factor / n_experts))


class ExpertChoiceMoE(RoutingDiagnostics, Mechanism):
    def __init__(self, d_model: int, n_experts: int, d_ff: int, activation: str, capacity_factor: float,
                 n_shared_experts: int, impl: str):
        super().__init__()
        self.n_experts, self.capacity_factor, self.impl = n_experts, capacity_factor, impl
        self.router = Router(d_model, n_experts)
        self.experts = Experts(n_experts, d_model, d_ff, activation)
        self.shared = FeedForward(d_model, n_shared_experts * d_ff, activation) if n_shared_experts else None
        self._chosen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        tokens = x.reshape(b * n, d)  # X: (T, d)
        logits, scores = self.router(tokens)  # S: (T, e)
        capacity = expert_choice_capacity(b * n, self.n_experts, self.capacity_factor)
        gates, chosen = scores.t().topk(capacity, dim=-1)  # G, I: (e, C)
        if self.impl == "batched":
            picked = tokens.index_select(0, chosen.flatten()).view(self.n_experts, capacity, d)  # (e, C, d)
            out = self.experts.batched(picked) * gates[..., None]  # G·E_i(x): (e, C, d)
            y = torch.zeros_like(tokens).index_add_(0, chosen.flatten(), out.view(-1, d))  # (T, d)
        else:
            y = torch.zeros_like(tokens)  # (T, d)
            for expert_ffn, rows, gate in zip(self.experts.each(), chosen, gates, strict=False):  # (C,), (C,)
                y.index_add_(0, rows, expert_ffn(tokens.index_select(0, rows)) * gate[:, None])
        if self.shared is not None:
            y = y + self.shared(tokens)
        self._chosen = chosen.detach()
        self.remember(logits, torch.full((self.n_experts,), capacity, device=x.device))
        return y.view(b, n, d)

    def dropped_fraction(self) -> float:
        """Share of the last call's tokens that no expert chose."""
        tokens = self._routing[0].shape[0]
        times_chosen = torch.bincount(self._chosen.flatten(), minlength=tokens)  # (T,)
        return float((times_chosen == 0).float().mean())


def expert_choice_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, d, e, f = config["batch"], config["seq_len"], config["d_model"], config["n_experts"], config["d_ff"]
    tokens = b * n
    assignments = e * expert_choice_capacity(tokens, e, config["capacity_factor"])
    t = Tally()
    router_cost(t, tokens, d, e, top_k=None)
    t.add(tokens * e, 0)  # Top-C over the T scores of each expert; backward scatters (free)
    if config["impl"] == "loop":  # each expert's gather gives a full-size dX: autograd sums the e of them
        t.add(0, (e - 1) * tokens * d)
    ffn_cost(t, assignments, d, f, config["activation"])
    rows = assignments * d
    t.elementwise(rows, 1, 3)  # G · E(x); backward: dE = G·dY, dG = Σ_d E·dY
    t.add(rows, rows)  # scatter-add into Y; the gather's backward scatter-adds into dX
    t.add(0, tokens * d)  # dX: the router's and the experts' gradients summed
    if config["n_shared_experts"]:
        ffn_cost(t, tokens, d, config["n_shared_experts"] * f, config["activation"])
        t.add(tokens * d, tokens * d)
    return Cost(t.total(mode), 0.0)


def _validate(config: dict[str, Any]) -> None:
    if config["capacity_factor"] <= 0:
        raise ConfigError(f"capacity_factor={config['capacity_factor']} must be > 0 for expert choice "
                          "(tokens per expert = tokens·capacity_factor/n_experts)")


@register(
    MechanismSpec(
        name="moe_expert_choice",
        complexity={"prefill": "O(N·(c·d·d_ff + e·d))", "train": "O(N·(c·d·d_ff + e·d))", "decode": "–", "state": "–"},
        family="moe",
        summary="Expert-choice MoE: each expert takes its top tokens, capacity T·c/e, perfectly balanced (non-causal)",
        paper=Paper("Mixture-of-Experts with Expert Choice Routing", 2022, "2202.09368"),
        causal=False,
        defaults={"n_experts": 8, "d_ff": 256, "activation": "swiglu", "capacity_factor": 2.0, "n_shared_experts": 0,
                  "impl": "batched"},
        choices={"impl": IMPLS, "activation": ACTIVATIONS},
        cost=expert_choice_cost,
        validate=_validate,
        measure=MeasureHints(loop_impls=("loop",)),
        tests=TestHooks(overrides={"d_ff": 16, "n_shared_experts": 1}),
        claims=(  # no x⁰ claim in n_experts: the router's 2·T·d·E dominates at large E (see token_choice.CLAIMS)
            Claim("flops", "capacity_factor", 1.0, "forward"),
            Claim("flops", "seq_len", 1.0, "forward"),
            Claim("flops", "seq_len", 1.0, "train"),
            Claim("params", "n_experts", 1.0, "forward"),
        ),
    )
)
def build_expert_choice(config: dict[str, Any]) -> ExpertChoiceMoE:
    return ExpertChoiceMoE(config["d_model"], config["n_experts"], config["d_ff"], config["activation"],
                           config["capacity_factor"], config["n_shared_experts"], config["impl"])
