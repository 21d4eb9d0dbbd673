"""Token-choice mixture of experts: each token picks its top-k experts (Shazeer et al. 2017; Switch, GShard).

    P = softmax(X W_g + b_g)                    router probabilities       (T × e)
    (G, I) = Top-k(P), G renormalised if k > 1  gates, chosen experts      (T × k)
    Y = Σ_k G_k · E_{I_k}(X)  (+ Σ_s S_s(X))    routed (+ shared) experts  (T × d)

Glossary: b batch, n seq_len, T = b·n tokens, d d_model, e n_experts, k top_k,
f d_ff (width of one expert), E_i expert i, S_s shared expert s (n_shared_experts,
always active, DeepSeekMoE), C expert capacity.

Compute follows the active experts, not the experts: each token runs k FFNs, so FLOPs
≈ T·k·(6·d·f) (SwiGLU) + T·e·2d (router), ∝ k and ∝ e⁰ (up to the router); parameters ∝ e.

Capacity and routing order. With capacity_factor > 0 each expert takes at most
C = ⌈capacity_factor·T·k/e⌉ assignments; the rest are dropped: their expert contribution
is 0 (the token passes through the block's residual) and they are counted in
`dropped_fraction`. Assignments claim their slot in routing order over the flattened
batch·sequence, position-major: (position 0: batch 0: rank 1..k), (position 0: batch 1: …),
(position 1: …) … so whether a token is dropped depends only on tokens at the same or earlier
positions, and the layer stays causal. Capacity is a property of the whole call, though:
step(x_t) routes its b tokens against a capacity of ⌈capacity_factor·b·k/e⌉, so prefill + step
equals forward only when nothing is dropped. Every registered default is therefore
capacity_factor = 0 (no limit: a per-token, drop-free layer, as in inference); set
capacity_factor to study dropping (Switch trained with 1.0–1.25, GShard with 2).

Forms (config `impl`), the same function:
- loop:   for each expert i, find its assignments (I == i), gather those tokens, run E_i,
          scatter-add G·E_i(x) into Y. e passes over the T·k assignments to build the masks.
- sorted: one stable sort of the T·k assignments by expert (routing order is kept within an
          expert), one gather of the tokens, one matmul pair per non-empty expert group on a
          contiguous slice, one scatter-add.

Presets (separate names sharing this module, different defaults):
- moe_topk: top_k = 2, n_experts = 8.
- switch:   top_k = 1 (gate = raw probability p_I), n_experts = 8 (Fedus et al. 2021).
- gshard:   top_k = 2 (gates renormalised), n_experts = 8 (Lepikhin et al. 2020); GShard's random
            second-expert dispatch is not modelled.
"""

from __future__ import annotations

from typing import Any

import torch

from effprof.config import ConfigError
from effprof.mechanisms.moe.cost import token_choice_cost
from effprof.mechanisms.moe.diagnostics import RoutingDiagnostics
from effprof.mechanisms.moe.experts import ACTIVATIONS, Experts, FeedForward
from effprof.mechanisms.moe.per_token import PerTokenMechanism
from effprof.mechanisms.moe.router import Router, token_choice_capacity, top_k_gates
from effprof.registry import Claim, MeasureHints, MechanismSpec, Paper, TestHooks, register
from effprof.runtime import counting as count_only
from effprof.runtime.counting import assignments_of, expert_loads

IMPLS = ("sorted", "loop")


class TokenChoiceMoE(RoutingDiagnostics, PerTokenMechanism):
    def __init__(self, d_model: int, n_experts: int, top_k: int, d_ff: int, activation: str, capacity_factor: float,
                 n_shared_experts: int, impl: str):
        super().__init__()
        self.n_experts, self.top_k, self.capacity_factor, self.impl = n_experts, top_k, capacity_factor, impl
        self.router = Router(d_model, n_experts)
        self.experts = Experts(n_experts, d_model, d_ff, activation)
        self.shared = FeedForward(d_model, n_shared_experts * d_ff, activation) if n_shared_experts else None
        self._capacity: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        tokens = x.transpose(0, 1).reshape(n * b, d)  # X in routing order (position-major): (T, d)
        logits, probs = self.router(tokens)  # (T, e), (T, e)
        gates, experts = top_k_gates(probs, self.top_k)  # G, I: (T, k)
        capacity = token_choice_capacity(n * b, self.top_k, self.n_experts, self.capacity_factor)
        dispatch = sorted_dispatch if self.impl == "sorted" else loop_dispatch
        y = dispatch(tokens, gates, experts, self.experts, capacity)  # Σ_k G_k E_{I_k}(X): (T, d)
        if self.shared is not None:
            y = y + self.shared(tokens)
        self._capacity = capacity
        if not count_only.active():  # diagnostics read the routing's data; a count has none
            self.remember(logits, torch.bincount(experts.flatten(), minlength=self.n_experts))
        return y.view(n, b, d).transpose(0, 1).contiguous()  # (b, n, d)

    def dropped_fraction(self) -> float:
        """Dropped assignments / all T·k assignments of the last call."""
        load = self._routing[1]
        if self._capacity is None:
            return 0.0
        return float((load - load.clamp(max=self._capacity)).sum() / load.sum())


def _flatten(gates: torch.Tensor, experts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(T, k) gates and experts -> per assignment, in routing order: gate (T·k,), expert (T·k,), token row (T·k,)."""
    T, k = experts.shape
    token_of = torch.arange(T, device=experts.device).repeat_interleave(k)  # row of each assignment: (T·k,)
    return gates.reshape(-1), experts.reshape(-1), token_of


def loop_dispatch(tokens: torch.Tensor, gates: torch.Tensor, experts: torch.Tensor, ffns: Experts,
                  capacity: int | None) -> torch.Tensor:
    """Reference: one pass over the assignments per expert, keeping the first `capacity` in routing order."""
    gate, expert, token_of = _flatten(gates, experts)  # (T·k,) each
    y = torch.zeros_like(tokens)  # (T, d)
    for i, expert_ffn in enumerate(ffns.each()):
        mine = assignments_of(expert, i, len(ffns.w_in))  # assignments to expert i, routing order: (C_i,)
        mine = mine[:capacity]  # beyond capacity: dropped (contribute 0)
        if mine.numel() == 0:
            continue
        rows = token_of[mine]  # (C_i,)
        out = expert_ffn(tokens.index_select(0, rows))  # E_i(x): (C_i, d)
        y.index_add_(0, rows, out * gate[mine, None])  # y_t += G·E_i(x_t)
    return y


def sorted_dispatch(tokens: torch.Tensor, gates: torch.Tensor, experts: torch.Tensor, ffns: Experts,
                    capacity: int | None) -> torch.Tensor:
    """Sort the assignments by expert, then one matmul pair per non-empty contiguous group."""
    gate, expert, token_of = _flatten(gates, experts)  # (T·k,) each
    order = torch.argsort(expert, stable=True)  # assignments grouped by expert, routing order within: (T·k,)
    counts = expert_loads(expert, ffns.w_in.shape[0])  # group sizes (balanced when counting: no data)
    groups = order.split(counts)
    if capacity is not None:  # keep the first `capacity` of each group
        groups = [g[:capacity] for g in groups]
        order = torch.cat(groups)
    rows = token_of[order]  # token of each kept assignment, grouped by expert: (A,)
    grouped = tokens.index_select(0, rows)  # (A, d)
    outputs = [E_i(x) for E_i, x in zip(ffns.each(), grouped.split([len(g) for g in groups]), strict=False) if len(x)]
    out = torch.cat(outputs) * gate[order, None]  # G·E_I(x): (A, d)
    return torch.zeros_like(tokens).index_add_(0, rows, out)  # (T, d)


def _validate(config: dict[str, Any]) -> None:
    if config["top_k"] > config["n_experts"]:
        raise ConfigError(f"top_k={config['top_k']} exceeds n_experts={config['n_experts']}; accepted: 1..n_experts")


# No claim that FLOPs are constant in n_experts: the experts' compute is (conditional computation), but the
# router's 2·T·d·E grows linearly in E, so the dominant term of total FLOPs is x¹ and a claim of x⁰ could
# never be judged true (README, "Mixture of experts" shows the router's share at 8 → 64 experts).
CLAIMS = (
    Claim("flops", "top_k", 1.0, "forward"),
    Claim("flops", "seq_len", 1.0, "forward"),
    Claim("flops", "seq_len", 1.0, "train"),
    Claim("flops", "seq_len", 0.0, "decode"),
    Claim("params", "n_experts", 1.0, "forward"),
    Claim("flops", "d_ff", 1.0, "forward"),
)


def _spec(name: str, summary: str, paper: Paper, top_k: int) -> MechanismSpec:
    return MechanismSpec(
        name=name,
        complexity={"prefill": "O(N·(k·d·d_ff + e·d))", "train": "O(N·(k·d·d_ff + e·d))",
                    "decode": "O(k·d·d_ff + e·d) per token", "state": "none"},
        family="moe",
        summary=summary,
        paper=paper,
        causal=True,
        defaults={"n_experts": 8, "top_k": top_k, "d_ff": 256, "activation": "swiglu", "capacity_factor": 0.0,
                  "n_shared_experts": 0, "impl": "sorted"},
        choices={"impl": IMPLS, "activation": ACTIVATIONS},
        cost=token_choice_cost,
        validate=_validate,
        measure=MeasureHints(loop_impls=IMPLS),  # both loop over experts in Python
        tests=TestHooks(overrides={"d_ff": 16, "n_shared_experts": 1}),
        claims=CLAIMS,
    )


def _build(config: dict[str, Any]) -> TokenChoiceMoE:
    return TokenChoiceMoE(config["d_model"], config["n_experts"], config["top_k"], config["d_ff"], config["activation"],
                          config["capacity_factor"], config["n_shared_experts"], config["impl"])


register(_spec(
    "moe_topk", "Token-choice top-k mixture of FFN experts, gather/scatter dispatch, optional capacity and shared experts",
    Paper("Outrageously Large Neural Networks: The Sparsely-Gated Mixture-of-Experts Layer", 2017, "1701.06538"), 2,
))(_build)
register(_spec(
    "switch", "Switch Transformer routing: top-1 token choice, gate = router probability (preset of moe_topk)",
    Paper("Switch Transformers: Scaling to Trillion Parameter Models with Simple and Efficient Sparsity", 2021,
          "2101.03961"), 1,
))(_build)
register(_spec(
    "gshard", "GShard routing: top-2 token choice with renormalised gates (preset of moe_topk)",
    Paper("GShard: Scaling Giant Models with Conditional Computation and Automatic Sharding", 2020, "2006.16668"), 2,
))(_build)
