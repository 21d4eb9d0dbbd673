"""Routing attention: queries and keys routed to k-means clusters (Roy et al. 2021, Routing Transformer).

Fixed centroids μ_1 … μ_κ (unit vectors per head) route each token on its own:

    c(q_i) = argmax_c q_iᵀμ_c,      c(k_j) = argmax_c k_jᵀμ_c      (nearest centroid in cosine distance)

and query i attends the keys of its cluster. With a fixed budget of w keys per query, causally:

    P_i = { the last w keys j ≤ i with c(k_j) = c(q_i) }  ∪  { i }
    o_i = Σ_{j ∈ P_i} exp(q_iᵀk_j / √d) v_j / Σ_{j ∈ P_i} exp(q_iᵀk_j / √d)

A query always sees itself, so P_i is never empty. In the paper the centroids are learned by
online (EMA) k-means during training and clusters are balanced over the whole sequence; here
they are fixed buffers (a trained layer at inference) and the budget is the most recent w keys
of the cluster, so the pattern depends only on earlier tokens and decode reproduces forward.

Glossary: b batch, n seq_len, h n_heads, d head_dim, κ n_clusters, w window (keys per query
taken from its cluster).

Forms (config `impl`), the same function:
- masked: clusters compared densely, a right-to-left count picks the last w, dense n×n scores
  masked to P_i (the reference).
- sorted: keys sorted by (cluster, position); the keys of c(q_i) up to i end at the sorted slot
  found by a binary search, so each query gathers the w slots before it (plus itself).
  O(n·w·d + n log n): linear in n at a fixed window.

Decode keeps, per cluster, a buffer of its last w keys and values and a count: state
O(κ·w·d) whatever n; a step routes the new key into its cluster's buffer and attends the
buffer of the query's cluster.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from effprof.cost_model import Tally, dtype_bytes, mean_over_decode
from effprof.mechanisms.sparse.attend import masked_attention, run_plan
from effprof.mechanisms.sparse.buckets import bucket_starts, sort_by_bucket
from effprof.mechanisms.sparse.cost import attend_cost, masked_cost, projections, sparse_claims
from effprof.mechanisms.sparse.layer import SparseAttention
from effprof.mechanisms.sparse.layout import KeyPart, Layout, Plan
from effprof.mechanisms.sparse.pairs import pattern_lists, plan_pairs
from effprof.mechanisms.sparse.static import static_tensor
from effprof.registry import Cost, MechanismSpec, Paper, TestHooks, register

IMPLS = ("masked", "sorted")


def dense_future(n: int) -> np.ndarray:
    return np.triu(np.ones((n, n), dtype=bool), 1)


def positions_column(n: int) -> np.ndarray:
    return np.arange(n)[:, None]


class RoutingAttention(SparseAttention):
    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.n_clusters, self.window = config["n_clusters"], config["window"]
        generator = torch.Generator().manual_seed(1)
        centroids = torch.randn(self.n_heads, self.n_clusters, self.head_dim, generator=generator)
        self.register_buffer("centroids", centroids / centroids.norm(dim=-1, keepdim=True))  # μ: (h, κ, d)

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, h, n, d) -> cluster (b, h, n): argmax_c xᵀμ_c."""
        return (x.detach() @ self.centroids.transpose(-2, -1)).argmax(dim=-1)  # (b, h, n, κ) -> (b, h, n)

    def plan(self, q: torch.Tensor, k: torch.Tensor) -> Plan:
        b, h, n, _ = q.shape
        w = self.window
        cluster_q, cluster_k = self.route(q), self.route(k)  # (b, h, n)
        sorted_key, perm = sort_by_bucket(cluster_k)  # keys by (cluster, position)
        base = cluster_q * n
        end = torch.searchsorted(sorted_key, base + torch.arange(n, device=q.device), right=True)  # after the last key ≤ i of c(q_i)
        start = torch.searchsorted(sorted_key, base)  # first key of c(q_i)
        slots = (end - w).unsqueeze(-1) + torch.arange(w, device=q.device)  # (b, h, n, w) the w sorted slots before `end`
        outside = (slots < start.unsqueeze(-1)).unsqueeze(-2)  # (b, h, n, 1, w): not of this cluster (or none)
        keys = perm.gather(-1, slots.clamp(min=0).view(b, h, n * w)).view(b, h, n, w)
        itself = static_tensor(positions_column, n, device=q.device, dtype=torch.long)  # (n, 1)
        counted = (cluster_k == cluster_q).view(b, h, n, 1, 1)  # its own key is already among the cluster's last w
        return Plan(Layout(n, 1), (KeyPart("group", keys, outside), KeyPart("group", itself, counted)))

    def fast(self, q, k, v):
        return run_plan(self.plan(q, k), q, k, v)

    def pairs(self, q, k):
        return plan_pairs(self.plan(q, k), q.shape[2])

    def masked(self, q, k, v):
        n = q.shape[2]
        cluster_q, cluster_k = self.route(q), self.route(k)
        same = (cluster_k.unsqueeze(-2) == cluster_q.unsqueeze(-1)).masked_fill(static_tensor(dense_future, n, device=q.device), False)
        later = same.flip(-1).cumsum(dim=-1).flip(-1)  # (b, h, n, n): cluster keys in j … i
        blocked = (same & (later <= self.window)).logical_not().masked_fill(static_tensor(np.eye, n, device=q.device), False)
        return masked_attention(q, k, v, blocked)

    # decode: per cluster, its last w keys and values
    def init_state(self, batch: int) -> dict[str, torch.Tensor]:
        w = self.v_proj.weight
        buffer = w.new_zeros(batch, self.n_heads, self.n_clusters, self.window, self.head_dim)
        return {"key": buffer, "value": buffer.clone(),
                "count": torch.zeros(batch, self.n_heads, self.n_clusters, dtype=torch.long, device=w.device)}

    def cache(self, q, k, v) -> dict[str, torch.Tensor]:
        b, h, _, d = k.shape
        w, κ = self.window, self.n_clusters
        sorted_key, perm = sort_by_bucket(self.route(k))
        clusters = torch.arange(κ + 1, device=k.device).expand(b, h, κ + 1)
        starts = bucket_starts(sorted_key, clusters)  # (b, h, κ + 1)
        slots = (starts[..., 1:] - w).unsqueeze(-1) + torch.arange(w, device=k.device)  # (b, h, κ, w)
        empty = (slots < starts[..., :-1].unsqueeze(-1)).unsqueeze(-1)
        index = perm.gather(-1, slots.clamp(min=0).view(b, h, κ * w)).view(b, h, κ * w, 1).expand(-1, -1, -1, d)
        key = k.gather(2, index).view(b, h, κ, w, d).masked_fill(empty, 0.0)
        value = v.gather(2, index).view(b, h, κ, w, d).masked_fill(empty, 0.0)
        return {"key": key, "value": value, "count": starts[..., 1:] - starts[..., :-1]}

    def step(self, x_t: torch.Tensor, state: dict[str, torch.Tensor]):
        q, k_t, v_t = self.project(x_t)  # (b, h, 1, d)
        b, h, _, d = q.shape
        w = self.window
        cluster_q, cluster_k = self.route(q), self.route(k_t)  # (b, h, 1)
        mine = cluster_k == torch.arange(self.n_clusters, device=q.device)  # (b, h, κ): the key's cluster
        k_new = k_t.unsqueeze(2).expand(-1, -1, self.n_clusters, -1, -1)  # (b, h, κ, 1, d_h): offered to every cluster
        v_new = v_t.unsqueeze(2).expand(-1, -1, self.n_clusters, -1, -1)
        keys = torch.where(mine[..., None, None], torch.cat([state["key"][:, :, :, 1:], k_new], dim=3), state["key"])
        values = torch.where(mine[..., None, None], torch.cat([state["value"][:, :, :, 1:], v_new], dim=3), state["value"])
        count = state["count"] + mine
        pick = cluster_q.view(b, h, 1, 1, 1).expand(-1, -1, -1, w, d)
        cluster_keys = keys.gather(2, pick)[:, :, 0]  # (b, h, w, d): the query's cluster
        cluster_values = values.gather(2, pick)[:, :, 0]
        empty = torch.arange(w, device=q.device) < w - count.gather(-1, cluster_q)  # (b, h, w): slots not filled yet
        counted = cluster_k == cluster_q  # (b, h, 1): its own key is in the buffer already
        blocked = torch.cat([empty, counted], dim=-1).unsqueeze(2)  # (b, h, 1, w + 1)
        o = masked_attention(q, torch.cat([cluster_keys, k_t], dim=2), torch.cat([cluster_values, v_t], dim=2), blocked)
        return self.output(o), {"key": keys, "value": values, "count": count}


# ----------------------------------------------------------------------------- cost model


def _route_cost(t: Tally, bh: int, n: int, d: int, clusters: int) -> None:
    t.add(2.0 * bh * n * d * clusters, 0)  # xᵀμ (no gradient through argmax)
    t.add(bh * n * clusters, 0)  # argmax


def routing_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, h, d = config["batch"], config["seq_len"], config["n_heads"], config["head_dim"]
    κ, w = config["n_clusters"], config["window"]
    bh = b * h
    state_bytes = 2 * bh * κ * w * d * dtype_bytes(config) + bh * κ * 8
    if mode == "decode":

        def per_token(context: int) -> float:
            t = Tally()
            projections(t, config, b)
            _route_cost(t, bh, 2, d, κ)  # query and key
            t.add(2 * bh * κ, 0)  # the key's cluster (==), count + 1
            t.add(bh * (1 + w + 1), 0)  # w − count, slot < …, c(k) = c(q)
            t.matmul(bh, 1, d, w + 1)
            t.softmax(bh * (w + 1))
            t.matmul(bh, 1, w + 1, d)
            return t.forward

        return Cost(mean_over_decode(config, per_token), state_bytes)
    t = Tally()
    projections(t, config, b * n)
    _route_cost(t, bh, 2 * n, d, κ)  # queries and keys
    if config["impl"] == "masked":
        t.add(5 * bh * n * n, 0)  # ==, right-to-left count, ≤ w, &, not
        masked_cost(t, config, n)
        return Cost(t.total(mode), state_bytes)
    t.add(2 * bh * n + bh * n * np.log2(max(n, 2)), 0)  # sort keys by cluster·n + position
    t.add(2 * bh * n, 0)  # c(q)·n + i
    t.add(bh * n + 3 * bh * n * w, 0)  # end − w, + slot; slot < start; clamp
    t.add(bh * n, 0)  # c(k_i) = c(q_i)
    attend_cost(t, config, n, 1, [("group", w), ("group", 1)], n)
    return Cost(t.total(mode), state_bytes)


@register(
    MechanismSpec(
        name="routing",
        complexity={"prefill": "O(N·(k_c + w)·d)", "train": "O(N·(k_c + w)·d)", "decode": "O((k_c + w)·d) per token", "state": "O(k_c·w·d)"},
        family="sparse",
        summary="Routing attention: queries/keys routed to fixed k-means centroids; each query attends the last `window` keys of its cluster",
        paper=Paper("Efficient Content-Based Sparse Attention with Routing Transformers", 2021, "2003.05997"),
        causal=True,
        defaults={"n_heads": 2, "head_dim": None, "impl": "sorted", "n_clusters": 8, "window": 64},
        choices={"impl": IMPLS},
        cost=routing_cost,
        pattern=lambda config: pattern_lists("routing", config),
        tests=TestHooks(overrides={"n_clusters": 3, "window": 3}),
        # decode keeps a buffer of w keys per cluster
        claims=(
            *sparse_claims(("sorted",), decode_state=0.0, decode_flops=0.0),
        ),
    )
)
def build_routing(config: dict[str, Any]) -> RoutingAttention:
    return RoutingAttention(config)
