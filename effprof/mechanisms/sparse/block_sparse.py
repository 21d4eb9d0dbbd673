"""Hardware-aligned block-sparse attention: compressed-block scores, top-n block selection per query
block and a local window, computed block by block (NSA-like; Yuan et al. 2025, "Native Sparse Attention").

Keys are grouped into contiguous blocks of B, the unit a kernel loads. Query block I (queries
I·B … I·B + B − 1) picks c key blocks by compressed scores (blocks.py), among the blocks that end
before the window of its first query; each query attends its window and the picked blocks:

    k̄_J = mean_{j ∈ J} k_j,   q̄_I = mean_{i ∈ I} q_i
    S_I = top-c blocks J by q̄_{I−1}ᵀk̄_J,   (J + 1)·B ≤ I·B − w + 1
    P_i = { j ≤ i : i − j < w }  ∪  ⋃_{J ∈ S_⌊i/B⌋} J
    o_i = Σ_{j ∈ P_i} exp(q_iᵀk_j / √d) v_j / Σ_{j ∈ P_i} exp(q_iᵀk_j / √d)

NSA scores blocks per query with a learned compression and mixes three branches (compressed,
selected, sliding) with learned gates. Here compression is the block mean, it serves selection
only, the choice is shared by a query block (from the previous block's summary, so it stays
causal), and the picked blocks and the window share one softmax: the layer is softmax
attention over P_i and has a dense reference.

Glossary: b batch, n seq_len, h n_heads, d head_dim, B block_size, c n_selected_blocks,
w window, m = ⌈n/B⌉ blocks.

Forms (config `impl`), the same function:
- masked: the same choice, then dense n×n scores masked to P_i (the reference).
- gathered: each query block gathers the band of w + B − 1 keys covering its windows and its c·B
  picked keys once, then one (B × (w + B − 1 + c·B)) product, softmax and product with the values.
  O(n·(w + B + c·B)·d) plus 2·m²·d for block scoring: linear in n until n ≈ 2B²·(w + B + c·B)
  (≈ 4.6·10⁵ at the defaults); the scoring term is quadratic with a 1/B² coefficient.

Decode keeps every key (any past block may be picked), the key block means, the current block's
queries and its choice: state O(n·d). A step attends w + c·B keys; when a block completes, its
means are taken and the next block's choice made (2·(t/B)·d).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from effprof.cost_model import Tally, dtype_bytes, mean_over_decode
from effprof.mechanisms.sparse.attend import masked_attention, run_plan
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
from effprof.mechanisms.sparse.layout import KeyPart, Plan
from effprof.mechanisms.sparse.pairs import pattern_lists, plan_pairs
from effprof.mechanisms.sparse.sliding_window import window_plan
from effprof.mechanisms.sparse.static import pad_tokens, padded, static_plan, static_tensor
from effprof.registry import Cost, MechanismSpec, Paper, TestHooks, register

IMPLS = ("masked", "gathered")


def before_window(n: int, block: int, window: int) -> np.ndarray:
    """(m, m) True where key block J does not end before the window of query block I's first query."""
    m = -(-n // block)
    I, J = np.arange(m)[:, None], np.arange(m)[None, :]
    return (J + 1) * block > I * block - window + 1


def dense_window(n: int, window: int) -> np.ndarray:
    """(n, n) True where j is in i's window."""
    lag = np.arange(n)[:, None] - np.arange(n)[None, :]
    return (lag >= 0) & (lag < window)


class BlockSparseAttention(SparseAttention):
    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.block_size, self.n_selected, self.window = config["block_size"], config["n_selected_blocks"], config["window"]

    def select(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k padded to whole blocks -> picks and unusable picks per query block, (b, h, m, c)."""
        ineligible = static_tensor(before_window, q.shape[2], self.block_size, self.window, device=q.device)
        return select_blocks(q, k, self.block_size, ineligible, self.n_selected)

    def plan(self, q: torch.Tensor, k: torch.Tensor) -> Plan:
        """q, k padded: the band of each query block (static) and its picked blocks (dynamic)."""
        B = self.block_size
        band = static_plan(window_plan, q.shape[2], self.window, 1, B, device=q.device)
        chosen, unusable = self.select(q, k)
        picked = KeyPart("group", block_positions(chosen, B), unusable.repeat_interleave(B, dim=-1).unsqueeze(-2))  # (b, h, m, 1, c·B)
        return Plan(band.layout, band.parts + (picked,))

    def fast(self, q, k, v):
        n = q.shape[2]
        length = padded(n, self.block_size)
        q, k, v = pad_tokens(q, length), pad_tokens(k, length), pad_tokens(v, length)
        return run_plan(self.plan(q, k), q, k, v)[:, :, :n]

    def pairs(self, q, k):
        n = q.shape[2]
        length = padded(n, self.block_size)
        return plan_pairs(self.plan(pad_tokens(q, length), pad_tokens(k, length)), n)

    def masked(self, q, k, v):
        n = q.shape[2]
        length = padded(n, self.block_size)
        chosen, unusable = self.select(pad_tokens(q, length), pad_tokens(k, length))
        picked = chosen_tokens(chosen, unusable, self.block_size, n)  # (b, h, n, n)
        blocked = picked.logical_not().masked_fill(static_tensor(dense_window, n, self.window, device=q.device), False)
        return masked_attention(q, k, v, blocked)

    # decode: every key and value, key block means, the current block's queries and its choice
    def init_state(self, batch: int) -> dict[str, torch.Tensor]:
        empty = self.v_proj.weight.new_zeros(batch, self.n_heads, 0, self.head_dim)
        return {"key": empty, "value": empty.clone(), "key_mean": empty.clone(), "block_query": empty.clone(),
                "chosen": torch.full((batch, self.n_heads, self.n_selected), -1, dtype=torch.long, device=empty.device)}

    def eligible(self, block_index: int) -> int:
        """Key blocks J that end before the window of block I's first query."""
        return max(0, (block_index * self.block_size - self.window + 1) // self.block_size)

    def cache(self, q, k, v) -> dict[str, torch.Tensor]:
        B, n = self.block_size, k.shape[2]
        complete = n // B * B
        key_mean = block_means(k[:, :, :complete], B)
        if complete:  # the choice of the current block, from the last complete one
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
        start = max(0, t - self.window + 1)
        keys = torch.cat([k[:, :, start:], gather_keys(k, positions)], dim=2)
        values = torch.cat([v[:, :, start:], gather_keys(v, positions)], dim=2)
        o = torch.softmax(q @ keys.transpose(-2, -1), dim=-1) @ values  # (b, h, 1, d)
        return self.output(o), next_block_state(self, state, q, k, v, t)


def next_block_state(module, state: dict[str, torch.Tensor], q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, t: int) -> dict[str, torch.Tensor]:
    """After the query at position t: append its query; when its block completes, take the block's
    key mean and make the next block's choice. (Shared with topk_attention.)"""
    B = module.block_size
    block_query = torch.cat([state["block_query"], q], dim=2)
    key_mean, chosen = state["key_mean"], state["chosen"]
    if (t + 1) % B == 0:
        key_mean = torch.cat([key_mean, k[:, :, t + 1 - B:].mean(dim=2, keepdim=True)], dim=2)
        chosen = decode_choice(block_query, key_mean, module.eligible((t + 1) // B), module.n_selected)
        block_query = block_query[:, :, :0].clone()
    return {"key": k, "value": v, "key_mean": key_mean, "block_query": block_query, "chosen": chosen}


# ----------------------------------------------------------------------------- cost model


def selection_cost(t: Tally, bh: int, length: int, d: int, block: int, n_selected: int) -> int:
    """Block means, scores and top-c for every query block; returns the picks per block."""
    m = length // block
    t.add(2 * bh * length * d, 0)  # q̄, k̄: means over each block
    t.add(2.0 * bh * m * m * d + bh * m * m, 0)  # q̄ k̄ᵀ, top-c (no gradient: the choice only)
    return min(n_selected, m)


def decode_state_bytes(config: dict[str, Any]) -> float:
    """Keys, values, key block means, the current block's queries and its choice (shared with topk_attention)."""
    b, n, h, d, B = config["batch"], config["seq_len"], config["n_heads"], config["head_dim"], config["block_size"]
    return b * h * ((2 * n + n // B + n % B) * d * dtype_bytes(config) + config["n_selected_blocks"] * 8)


def decode_block_cost(t: Tally, bh: int, d: int, block: int, n_selected: int, position: int, eligible: int) -> None:
    """After the query at `position`: when its block completes, key mean, query mean, scores and top-c."""
    if (position + 1) % block == 0:
        t.add(2 * bh * block * d, 0)  # the block's key and query means
        if eligible:
            t.add(2.0 * bh * eligible * d + bh * eligible, 0)  # q̄ k̄ᵀ, top-c


def block_sparse_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, h, d = config["batch"], config["seq_len"], config["n_heads"], config["head_dim"]
    B, c, w = config["block_size"], config["n_selected_blocks"], config["window"]
    bh = b * h

    def eligible(block_index: int) -> int:
        return max(0, (block_index * B - w + 1) // B)

    if mode == "decode":

        def per_token(context: int) -> float:
            position = context - 1
            t = Tally()
            projections(t, config, b)
            picks = min(c, eligible(position // B))  # its block's choice
            t.add(2 * c + bh * picks * (1 + B), 0)  # usable picks (≥ 0, count); block·B + offset
            keys = min(w, context) + picks * B
            t.matmul(bh, 1, d, keys)
            t.softmax(bh * keys)
            t.matmul(bh, 1, keys, d)
            decode_block_cost(t, bh, d, B, c, position, eligible((position + 1) // B))
            return t.forward

        return Cost(mean_over_decode(config, per_token), decode_state_bytes(config))
    t = Tally()
    projections(t, config, b * n)
    length = padded(n, B)
    picks = selection_cost(t, bh, length, d, B, c)
    if config["impl"] == "masked":
        t.add(bh * n * n, 0)  # keys outside P_i (not)
        masked_cost(t, config, n)
    else:
        t.add(bh * (length // B) * picks * (1 + B), 0)  # picked positions: block·B + offset
        attend_cost(t, config, length // B, B, [("group", w + B - 1), ("group", picks * B)], length)
    return Cost(t.total(mode), decode_state_bytes(config))


@register(
    MechanismSpec(
        name="block_sparse",
        complexity={"prefill": "O(N²·d/B² + N·(s·B + w)·d)", "train": "O(N²·d/B² + N·(s·B + w)·d)",
                    "decode": "O((N/B + s·B + w)·d) per token", "state": "O(N·d)"},
        family="sparse",
        summary="NSA-like block-sparse attention: per query block, top n_selected_blocks key blocks by compressed scores + a local window",
        paper=Paper("Native Sparse Attention: Hardware-Aligned and Natively Trainable Sparse Attention", 2025, "2502.11089"),
        causal=True,
        defaults={"n_heads": 2, "head_dim": None, "impl": "gathered", "block_size": 32, "n_selected_blocks": 4, "window": 64},
        choices={"impl": IMPLS},
        cost=block_sparse_cost,
        pattern=lambda config: pattern_lists("block_sparse", config),
        tests=TestHooks(overrides={"block_size": 3, "n_selected_blocks": 2, "window": 4}),
        # linear at a fixed budget (block scoring adds 2·(n/B)²·d); decode keeps every key: any past block may be picked
        claims=(
            *sparse_claims(("gathered",), decode_state=1.0, decode_flops=0.0, selection=SELECTION),
        ),
    )
)
def build_block_sparse(config: dict[str, Any]) -> BlockSparseAttention:
    return BlockSparseAttention(config)
