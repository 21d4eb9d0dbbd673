"""Top-k attention: each query keeps its k highest-scoring keys (kNN-style), found through a cheap
candidate stage (as Memorizing Transformers' approximate kNN; here by compressed block scores).

Candidate stage (blocks.py): keys and queries are grouped in blocks of B and compressed to their
means; query block I picks the c key blocks J < I with the highest q̄_{I−1}ᵀk̄_J. Query i's
candidates are those blocks and its own block up to itself, and it keeps the best k of them:

    C_i = { j ≤ i : ⌊j/B⌋ = ⌊i/B⌋ }  ∪  ⋃_{J ∈ S_⌊i/B⌋} J                      ((c + 1)·B keys at most)
    P_i = top-k_{j ∈ C_i} q_iᵀk_j                                                (exact scores)
    o_i = Σ_{j ∈ P_i} exp(q_iᵀk_j / √d) v_j / Σ_{j ∈ P_i} exp(q_iᵀk_j / √d)

so only (c + 1)·B keys per query are scored exactly, never all n, and the choice uses only
tokens before i: causal, and decode reproduces the forward pass.

Glossary: b batch, n seq_len, h n_heads, d head_dim, k top_k, B block_size, c n_selected_blocks,
m = ⌈n/B⌉ blocks.

Forms (config `impl`), the same function:
- masked: the same candidate blocks, then dense n×n scores masked to C_i, the k-th largest of each
  row as a threshold, the rest −∞ (the reference).
- gathered: each query block gathers its candidates once ((c + 1)·B keys), scores them in one
  (B × (c + 1)·B) product, keeps each row's k best (threshold at the k-th value) and applies the
  softmax weights to the gathered values, zeros included. O(n·(c + 1)·B·d) plus 2·m²·d for block
  scoring: linear in n at a fixed budget.

Decode keeps every key (a later block may pick any past block), the key block means, the current
block's queries and its choice: state O(n·d); a step scores (c + 1)·B candidates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from effprof.cost_model import Tally, mean_over_decode
from effprof.mechanisms.sparse.attend import attend, part_scores
from effprof.mechanisms.sparse.block_sparse import decode_block_cost, decode_state_bytes, next_block_state, selection_cost
from effprof.mechanisms.sparse.blocks import (
    block_means,
    block_positions,
    chosen_positions,
    chosen_tokens,
    decode_choice,
    gather_keys,
    select_blocks,
)
from effprof.mechanisms.sparse.cost import SELECTION, attend_cost, masked_cost, projections, sparse_claims
from effprof.mechanisms.sparse.layer import SparseAttention
from effprof.mechanisms.sparse.layout import NEG_INF, KeyPart, Plan, from_groups, to_groups
from effprof.mechanisms.sparse.pairs import pattern_lists, unique_sorted
from effprof.mechanisms.sparse.sparse_transformer import fixed_plan
from effprof.mechanisms.sparse.static import pad_tokens, padded, static_plan, static_tensor
from effprof.registry import Cost, MechanismSpec, Paper, TestHooks, register

IMPLS = ("masked", "gathered")


def before_own(n: int, block: int) -> np.ndarray:
    """(m, m) True where key block J is not a complete block before query block I."""
    m = -(-n // block)
    return np.arange(m)[None, :] >= np.arange(m)[:, None]


def dense_own_block(n: int, block: int) -> np.ndarray:
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    return (i // block == j // block) & (j <= i)


class TopkAttention(SparseAttention):
    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.top_k, self.block_size, self.n_selected = config["top_k"], config["block_size"], config["n_selected_blocks"]

    def select(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ineligible = static_tensor(before_own, q.shape[2], self.block_size, device=q.device)
        return select_blocks(q, k, self.block_size, ineligible, self.n_selected)

    def plan(self, q: torch.Tensor, k: torch.Tensor) -> Plan:
        """q, k padded: each query block's own block (causal, static; the fixed pattern's A⁽¹⁾) and its picks."""
        B = self.block_size
        own = static_plan(fixed_plan, q.shape[2], B, 1, device=q.device)
        chosen, unusable = self.select(q, k)
        picked = KeyPart("group", block_positions(chosen, B), unusable.repeat_interleave(B, dim=-1).unsqueeze(-2))  # (b, h, m, 1, c·B)
        return Plan(own.layout, (own.parts[0], picked))

    def kept(self, width: int) -> int:
        return min(self.top_k, width)

    def fast(self, q, k, v):
        n = q.shape[2]
        length = padded(n, self.block_size)
        q, k, v = pad_tokens(q, length), pad_tokens(k, length), pad_tokens(v, length)
        plan = self.plan(q, k)
        o = attend(to_groups(q, plan.layout), k, v, plan.parts, keep_top=self.top_k)
        return from_groups(o, plan.layout)[:, :, :n]

    def pairs(self, q, k):
        n = q.shape[2]
        length = padded(n, self.block_size)
        q, k = pad_tokens(q, length), pad_tokens(k, length)
        plan = self.plan(q, k)
        groups = to_groups(q, plan.layout)  # (b, h, m, B, d)
        s = torch.cat([part_scores(groups, k, part) for part in plan.parts], dim=-1)[0]  # (h, m, B, L)
        keys = torch.cat([part.index.expand(*s.shape[:2], -1) if part.index.dim() == 2 else part.index[0] for part in plan.parts], dim=-1)
        threshold = s.topk(self.kept(s.shape[-1]), dim=-1).values[..., -1:]
        keep = (s >= threshold) & ~s.isinf()  # (h, m, B, L)
        queries = torch.as_tensor(plan.layout.positions())[None, :, :, None].expand_as(keep)
        keys = keys.unsqueeze(-2).expand_as(keep)
        pairs = unique_sorted((queries[keep] * n + keys[keep]).numpy())
        pairs = pairs[pairs // n < n]
        return pairs // n, pairs % n

    def masked(self, q, k, v):
        n = q.shape[2]
        length = padded(n, self.block_size)
        chosen, unusable = self.select(pad_tokens(q, length), pad_tokens(k, length))
        outside = chosen_tokens(chosen, unusable, self.block_size, n).logical_not()  # (b, h, n, n)
        outside = outside.masked_fill(static_tensor(dense_own_block, n, self.block_size, device=q.device), False)
        s = (q @ k.transpose(-2, -1)).masked_fill(outside, NEG_INF)  # scores of the candidates C_i
        threshold = s.detach().topk(min(self.top_k, n), dim=-1).values[..., -1:]  # the k-th best per row
        return torch.softmax(s.masked_fill(s < threshold, NEG_INF), dim=-1) @ v

    # decode: every key and value, key block means, the current block's queries and its choice
    def init_state(self, batch: int) -> dict[str, torch.Tensor]:
        empty = self.v_proj.weight.new_zeros(batch, self.n_heads, 0, self.head_dim)
        return {"key": empty, "value": empty.clone(), "key_mean": empty.clone(), "block_query": empty.clone(),
                "chosen": torch.full((batch, self.n_heads, self.n_selected), -1, dtype=torch.long, device=empty.device)}

    def eligible(self, block_index: int) -> int:
        return block_index  # every complete block before it

    def cache(self, q, k, v) -> dict[str, torch.Tensor]:
        B, n = self.block_size, k.shape[2]
        complete = n // B * B
        key_mean = block_means(k[:, :, :complete], B)
        if complete:
            chosen = decode_choice(q[:, :, complete - B:complete], key_mean, self.eligible(n // B), self.n_selected)
        else:
            chosen = self.init_state(k.shape[0])["chosen"]
        return {"key": k.contiguous(), "value": v.contiguous(), "key_mean": key_mean,
                "block_query": q[:, :, complete:].clone(), "chosen": chosen}

    def step(self, x_t: torch.Tensor, state: dict[str, torch.Tensor]):
        q, k_t, v_t = self.project(x_t)  # (b, h, 1, d)
        k = torch.cat([state["key"], k_t], dim=2)  # (b, h, t + 1, d)
        v = torch.cat([state["value"], v_t], dim=2)
        t, B = k.shape[2] - 1, self.block_size
        positions = chosen_positions(state["chosen"], B, min(self.n_selected, self.eligible(t // B)))  # (b, h, c'·B)
        own = t // B * B
        keys = torch.cat([k[:, :, own:], gather_keys(k, positions)], dim=2)  # the candidates
        values = torch.cat([v[:, :, own:], gather_keys(v, positions)], dim=2)
        s = q @ keys.transpose(-2, -1)  # (b, h, 1, L)
        top, slots = s.topk(self.kept(s.shape[-1]), dim=-1)
        chosen_values = values.gather(2, slots.transpose(-2, -1).expand(-1, -1, -1, values.shape[-1]))  # (b, h, k, d)
        o = torch.softmax(top, dim=-1) @ chosen_values  # (b, h, 1, d)
        return self.output(o), next_block_state(self, state, q, k, v, t)


# ----------------------------------------------------------------------------- cost model


def topk_attention_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, h, d = config["batch"], config["seq_len"], config["n_heads"], config["head_dim"]
    K, B, c = config["top_k"], config["block_size"], config["n_selected_blocks"]
    bh = b * h
    if mode == "decode":

        def per_token(context: int) -> float:
            position = context - 1
            t = Tally()
            projections(t, config, b)
            picks = min(c, position // B)  # its block's choice
            t.add(2 * c + bh * picks * (1 + B), 0)  # usable picks (≥ 0, count); block·B + offset
            candidates = position % B + 1 + picks * B
            kept = min(K, candidates)
            t.matmul(bh, 1, d, candidates)
            t.add(bh * candidates, 0)  # top-k
            t.softmax(bh * kept)
            t.matmul(bh, 1, kept, d)
            decode_block_cost(t, bh, d, B, c, position, (position + 1) // B)
            return t.forward

        return Cost(mean_over_decode(config, per_token), decode_state_bytes(config))
    t = Tally()
    projections(t, config, b * n)
    length = padded(n, B)
    picks = selection_cost(t, bh, length, d, B, c)
    if config["impl"] == "masked":
        t.add(2 * bh * n * n, 0)  # keys outside C_i (not); below the k-th (<)
        t.add(bh * n * n, 0)  # top-k per row (the threshold)
        masked_cost(t, config, n)
        return Cost(t.total(mode), decode_state_bytes(config))
    width = (picks + 1) * B
    t.add(bh * (length // B) * picks * (1 + B), 0)  # picked positions: block·B + offset
    attend_cost(t, config, length // B, B, [("group", B), ("group", picks * B)], length)
    if K < width:
        t.add(2 * bh * length * width, 0)  # top-k per row (the threshold), below it (<)
    return Cost(t.total(mode), decode_state_bytes(config))


@register(
    MechanismSpec(
        name="topk_attention",
        complexity={"prefill": "O(N²·d/B² + N·k·d)", "train": "O(N²·d/B² + N·k·d)", "decode": "O((N/B + k)·d) per token", "state": "O(N·d)"},
        family="sparse",
        summary="Top-k attention: each query keeps its top_k keys among candidates from n_selected_blocks blocks chosen by block means",
        paper=Paper("Memorizing Transformers", 2022, "2203.08913"),
        causal=True,
        defaults={"n_heads": 2, "head_dim": None, "impl": "gathered", "top_k": 32, "block_size": 32, "n_selected_blocks": 4},
        choices={"impl": IMPLS},
        cost=topk_attention_cost,
        pattern=lambda config: pattern_lists("topk_attention", config),
        tests=TestHooks(overrides={"top_k": 4, "block_size": 3, "n_selected_blocks": 2}),
        # linear while n/B ≪ the candidate budget (block scoring adds 2·n·(n/B)·d); any past block may be a candidate
        claims=(
            *sparse_claims(("gathered",), decode_state=1.0, decode_flops=0.0, selection=SELECTION),
        ),
    )
)
def build_topk_attention(config: dict[str, Any]) -> TopkAttention:
    return TopkAttention(config)
