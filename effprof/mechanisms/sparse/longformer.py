"""Longformer: sliding-window attention plus global tokens (Beltagy et al. 2020).

The first g positions are global: they attend to every position and every position attends
to them. Causally that reads

    P_i = { j ≤ i : i − j < w }  ∪  { j ≤ i : j < g }
    o_i = Σ_{j ∈ P_i} exp(q_iᵀk_j / √d) v_j / Σ_{j ∈ P_i} exp(q_iᵀk_j / √d)

(a global query i < g attends all j ≤ i, which are all global). The paper gives global
attention its own projections Q_g, K_g, V_g; here one set of projections serves both, so the
layer is one softmax over P_i.

Glossary: b batch, n seq_len, h n_heads, d head_dim, w window, g n_global, B block_size.

Forms (config `impl`), the same function:
- masked: dense n×n scores, −∞ outside P_i (the reference).
- blocked: blocks of B queries gather their band of w + B − 1 keys (as sliding_window) plus
  one shared list of the g global keys, masked where the band already holds them; one softmax
  over both. O(n·(w + B + g)·d): linear in n.
- fused (the default): the same key lists, gathered once into one list per block and run through torch's
  fused attention kernel in one call, the blocked slots a precomputed −∞ bias (attend.fused_plan): no score
  matrix in memory; the same pairs computed as blocked.

Decode keeps the last w − 1 keys and the g global keys: O((w + g)·d) state, whatever n.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from effprof.cost_model import Tally, dtype_bytes, mean_over_decode
from effprof.mechanisms.sparse.attend import masked_attention
from effprof.mechanisms.sparse.cost import attend_cost, decode_step_flops, fused_cost, masked_cost, projections, sparse_claims
from effprof.mechanisms.sparse.layer import StaticPlanAttention
from effprof.mechanisms.sparse.layout import Layout
from effprof.mechanisms.sparse.pairs import pattern_lists
from effprof.mechanisms.sparse.sliding_window import window_plan
from effprof.mechanisms.sparse.static import StaticPart, padded, static_plan, static_tensor
from effprof.registry import Cost, MechanismSpec, Paper, TestHooks, register

IMPLS = ("masked", "blocked", "fused")


def longformer_plan(n: int, window: int, n_global: int, block: int) -> tuple[Layout, list[StaticPart]]:
    layout, parts = window_plan(n, window, 1, block)
    g = min(n_global, n)
    if g:
        queries = layout.positions()[:, :, None]  # (G, B, 1)
        keys = np.arange(g)  # (g,)
        covered = (keys > queries) | (queries - keys < window)  # future, or already in the band
        parts.append(StaticPart("shared", keys, covered))
    return layout, parts


def longformer_blocked(n: int, window: int, n_global: int) -> np.ndarray:
    """Dense (n, n) mask of the reference: True where query i does not attend key j."""
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    return (j > i) | ((i - j >= window) & (j >= n_global))


class LongformerAttention(StaticPlanAttention):
    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.window, self.n_global, self.block_size = config["window"], config["n_global"], config["block_size"]

    def plan(self, n: int, device: torch.device):
        return static_plan(longformer_plan, n, self.window, self.n_global, self.block_size, device=device)

    def plan_args(self, n: int) -> tuple:
        return (longformer_plan, n, self.window, self.n_global, self.block_size)

    def masked(self, q, k, v):
        blocked = static_tensor(longformer_blocked, q.shape[2], self.window, self.n_global, device=q.device)
        return masked_attention(q, k, v, blocked)

    # decode: the last w − 1 keys, the global keys, and the position
    def init_state(self, batch: int) -> dict[str, torch.Tensor]:
        empty = self.v_proj.weight.new_zeros(batch, self.n_heads, 0, self.head_dim)
        return {"key": empty, "value": empty.clone(), "global_key": empty.clone(), "global_value": empty.clone(),
                "position": torch.zeros((), dtype=torch.long, device=empty.device)}

    def cache(self, q, k, v) -> dict[str, torch.Tensor]:
        n = k.shape[2]
        keep, g = min(self.window - 1, n), min(self.n_global, n)
        return {"key": k[:, :, n - keep:].clone(), "value": v[:, :, n - keep:].clone(),
                "global_key": k[:, :, :g].clone(), "global_value": v[:, :, :g].clone(),
                "position": torch.tensor(n, device=k.device)}

    def step(self, x_t: torch.Tensor, state: dict[str, torch.Tensor]):
        q, k_t, v_t = self.project(x_t)  # (b, h, 1, d)
        t = int(state["position"])
        k = torch.cat([state["key"], k_t], dim=2)  # the band: positions t − w + 1 … t
        v = torch.cat([state["value"], v_t], dim=2)
        far = max(0, min(self.n_global, t - self.window + 1))  # global keys left of the band
        keys = torch.cat([state["global_key"][:, :, :far], k], dim=2)
        values = torch.cat([state["global_value"][:, :, :far], v], dim=2)
        o = torch.softmax(q @ keys.transpose(-2, -1), dim=-1) @ values  # (b, h, 1, d)
        keep = min(self.window - 1, k.shape[2])
        global_key, global_value = state["global_key"], state["global_value"]
        if t < self.n_global:
            global_key, global_value = torch.cat([global_key, k_t], dim=2), torch.cat([global_value, v_t], dim=2)
        return self.output(o), {"key": k[:, :, k.shape[2] - keep:].clone(), "value": v[:, :, v.shape[2] - keep:].clone(),
                                "global_key": global_key, "global_value": global_value,
                                "position": state["position"] + 1}


# ----------------------------------------------------------------------------- cost model


def longformer_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, h, d = config["batch"], config["seq_len"], config["n_heads"], config["head_dim"]
    w, g, B = config["window"], config["n_global"], config["block_size"]
    state_bytes = 2 * b * h * (min(w - 1, n) + min(g, n)) * d * dtype_bytes(config) + 8  # + the position
    if mode == "decode":

        def per_token(context: int) -> float:
            position = context - 1
            keys = min(w, context) + max(0, min(g, position - w + 1))
            return decode_step_flops(config, keys) + 1  # + 1: position + 1

        return Cost(mean_over_decode(config, per_token), state_bytes)
    t = Tally()
    projections(t, config, b * n)
    if config["impl"] == "masked":
        masked_cost(t, config, n)
    else:
        length = padded(n, B)
        parts = [("group", w + B - 1)] + ([("shared", min(g, n))] if g else [])
        if config["impl"] == "fused":
            fused_cost(t, config, length // B, B, [width for _, width in parts])
        else:
            attend_cost(t, config, length // B, B, parts, length)
    return Cost(t.total(mode), state_bytes)


@register(
    MechanismSpec(
        name="longformer",
        complexity={"prefill": "O(N·(w + g)·d)", "train": "O(N·(w + g)·d)", "decode": "O((w + g)·d) per token", "state": "O((w + g)·d)"},
        family="sparse",
        summary="Longformer: causal sliding window plus n_global global tokens, blocked band + shared global keys",
        paper=Paper("Longformer: The Long-Document Transformer", 2020, "2004.05150"),
        causal=True,
        defaults={"n_heads": 2, "head_dim": None, "impl": "fused", "window": 64, "n_global": 16, "block_size": 32},
        choices={"impl": IMPLS},
        cost=longformer_cost,
        pattern=lambda config: pattern_lists("longformer", config),
        tests=TestHooks(overrides={"window": 5, "n_global": 3, "block_size": 4}),
        claims=(
            *sparse_claims(("blocked", "fused"), decode_state=0.0, decode_flops=0.0),
        ),
    )
)
def build_longformer(config: dict[str, Any]) -> LongformerAttention:
    return LongformerAttention(config)
