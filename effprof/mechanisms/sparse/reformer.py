"""Reformer LSH attention (Kitaev et al. 2020), causal, shared-QK, multi-round.

Shared-QK: keys are the normalised queries, k_j = q_j / ‖q_j‖. Angular LSH with a fixed random
rotation R_r (d × β/2) per round r hashes each token on its own:

    h_r(x) = argmax([x R_r ; −x R_r])        ∈ {0, …, β − 1}

so a token's bucket never depends on the rest of the sequence. Tokens are sorted by
(bucket, position) and each bucket is cut into chunks of C tokens *by rank in the bucket*
(the number of earlier tokens sharing it, again a causal quantity). In round r query i attends
the keys of its bucket in its own chunk and the chunk before:

    P_i⁽ʳ⁾ = { j ≤ i : h_r(j) = h_r(i),  rank_r(j) ≥ C·(⌊rank_r(i)/C⌋ − 1) }
    P_i    = ∪_r P_i⁽ʳ⁾

A token attends itself only when nothing else is there (its score is replaced by −10⁴). The
rounds are merged as in the paper: round r normalises over P_i⁽ʳ⁾ with scores
s_ij − log N_ij, where N_ij = |{r' : j ∈ P_i⁽ʳ'⁾}| counts duplicates, and

    o_i = Σ_r exp(z_i⁽ʳ⁾ − z_i) o_i⁽ʳ⁾,   z_i⁽ʳ⁾ = logsumexp_{j ∈ P_i⁽ʳ⁾}(s_ij − log N_ij),  z_i = logsumexp_r z_i⁽ʳ⁾

which equals softmax attention over P_i exactly.

Glossary: b batch, n seq_len, h n_heads, d head_dim, β n_buckets, ρ n_hashes (rounds),
C chunk_size.

Forms (config `impl`), the same function:
- masked: buckets and ranks by dense comparisons, the dense n×n scores masked to P_i (the reference).
- sorted: per round, sort by (bucket, position), cut the sorted order into blocks of C queries;
  a query's keys lie at most 2C − 1 sorted slots back, so each block gathers the 3C sorted
  slots ending with it and masks by bucket and rank. O(ρ·n·3C·d + ρ·n·log n): linear in n
  at a fixed chunk size (the sort adds a log n factor with a tiny coefficient).

Decode keeps the full cache (keys, values, buckets and ranks of every token, counts per
bucket): P_i depends on every earlier key's bucket, so the new query is hashed and matched
against all of them: state O(n·d), step O(n·d).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from effprof.config import ConfigError
from effprof.cost_model import Tally, dtype_bytes, mean_over_decode
from effprof.mechanisms.sparse.attend import attend, masked_attention
from effprof.mechanisms.sparse.buckets import ranks_in_bucket
from effprof.mechanisms.sparse.cost import attend_cost, masked_cost, projections, sparse_claims
from effprof.mechanisms.sparse.layer import SparseAttention
from effprof.mechanisms.sparse.layout import KeyPart, Layout, Plan, gather_tokens
from effprof.mechanisms.sparse.pairs import pattern_lists, plan_pairs
from effprof.mechanisms.sparse.static import pad_tokens, padded, static_tensor
from effprof.registry import Claim, Cost, MechanismSpec, Paper, TestHooks, register

IMPLS = ("masked", "sorted")


def chunk_slots(groups: int, chunk: int) -> np.ndarray:
    """(G, 3C) sorted slots each block of C sorted queries looks at: the 2C before it and itself."""
    return np.arange(groups)[:, None] * chunk - 2 * chunk + np.arange(3 * chunk)


def chunk_slots_clamped(groups: int, chunk: int) -> np.ndarray:
    return np.maximum(chunk_slots(groups, chunk), 0)


def chunk_lag(chunk: int) -> np.ndarray:
    """(C, 3C) sorted distance from query row i to key slot l: 2C + i − l."""
    return 2 * chunk + np.arange(chunk)[:, None] - np.arange(3 * chunk)[None, :]


def chunk_self(chunk: int) -> np.ndarray:
    """(C, 3C): the slot holding the query itself."""
    return chunk_lag(chunk) == 0


def static_blocked(groups: int, chunk: int, rounds: int) -> np.ndarray:
    """(ρG, C, 3C): slots before the start of the order, or after the query."""
    blocked = (chunk_slots(groups, chunk)[:, None, :] < 0) | (chunk_lag(chunk)[None] < 0)
    return np.tile(blocked, (rounds, 1, 1))


def dense_future(n: int) -> np.ndarray:
    return np.triu(np.ones((n, n), dtype=bool), 1)


def dense_not_before(n: int) -> np.ndarray:
    return ~np.tril(np.ones((n, n), dtype=bool), -1)


class ReformerAttention(SparseAttention):
    shared_qk = True

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.n_buckets, self.n_hashes, self.chunk_size = config["n_buckets"], config["n_hashes"], config["chunk_size"]
        generator = torch.Generator().manual_seed(0)
        # R_r: (h, ρ, d, β/2), fixed random rotations (a buffer, not a parameter)
        self.register_buffer("rotations", torch.randn(self.n_heads, self.n_hashes, self.head_dim, self.n_buckets // 2, generator=generator))

    def hash(self, q: torch.Tensor) -> torch.Tensor:
        """q: (b, h, n, d) -> buckets (b, h, ρ, n): argmax([qR ; −qR]), each token on its own."""
        rotated = q.detach().unsqueeze(2) @ self.rotations  # (b, h, ρ, n, β/2)
        return torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1)

    # ------------------------------------------------------------------ the sorted form

    def plan(self, q: torch.Tensor) -> tuple[Plan, torch.Tensor]:
        """q: (b, h, n', d) padded to whole chunks -> the plan over ρ·G groups of C sorted queries, and perm."""
        b, h, n, _ = q.shape
        C, rounds = self.chunk_size, self.n_hashes
        G = n // C
        bucket = self.hash(q)  # (b, h, ρ, n)
        perm, sorted_bucket, sorted_rank, _ = ranks_in_bucket(bucket, self.n_buckets)  # (b, h, ρ, n) each
        slots = static_tensor(chunk_slots_clamped, G, C, device=q.device, dtype=torch.long)  # (G, 3C)
        slots = slots.reshape(1, 1, 1, G * 3 * C).expand(b, h, rounds, -1)
        key_position = perm.gather(-1, slots).view(b, h, rounds * G, 3 * C)  # (b, h, ρG, 3C)
        key_bucket = sorted_bucket.gather(-1, slots).view(b, h, rounds * G, 1, 3 * C)
        query_bucket = sorted_bucket.view(b, h, rounds * G, C, 1)
        limit = sorted_rank.view(b, h, rounds * G, C, 1) % C + C  # a key may be this many slots back
        lag = static_tensor(chunk_lag, C, device=q.device, dtype=torch.long)  # (C, 3C)
        blocked = (static_tensor(static_blocked, G, C, rounds, device=q.device),  # (ρG, C, 3C)
                   lag > limit, key_bucket != query_bucket)
        bias = self.duplicates(bucket, perm, sorted_rank, key_position).to(q.dtype) if rounds > 1 else None
        penalty = static_tensor(chunk_self, C, device=q.device)  # the query itself
        layout = Layout(n, C, order=perm.view(b, h, rounds * G, C))
        return Plan(layout, (KeyPart("group", key_position, blocked, penalty, bias),)), perm

    def duplicates(self, bucket, perm, sorted_rank, key_position) -> torch.Tensor:
        """−log N_ij for every (query, key slot) of every round: N_ij = rounds whose P_i⁽ʳ'⁾ holds j."""
        b, h, rounds, n = bucket.shape
        C = self.chunk_size
        rank = torch.empty_like(sorted_rank).scatter(-1, perm, sorted_rank)  # (b, h, ρ, n) by position
        query_position = perm.reshape(b, h, 1, rounds * n).expand(b, h, rounds, -1)  # every round's queries
        key_index = key_position.reshape(b, h, 1, -1).expand(b, h, rounds, -1)
        bq = bucket.gather(-1, query_position).view(b, h, rounds, rounds * (n // C), C, 1)  # (b, h, ρ', ρG, C, 1)
        rq = rank.gather(-1, query_position).view(b, h, rounds, rounds * (n // C), C, 1)
        bk = bucket.gather(-1, key_index).view(b, h, rounds, rounds * (n // C), 1, 3 * C)  # (b, h, ρ', ρG, 1, 3C)
        rk = rank.gather(-1, key_index).view(b, h, rounds, rounds * (n // C), 1, 3 * C)
        member = (bq == bk) & (rq - rk <= rq % C + C)  # j ∈ P_i⁽ʳ'⁾ (for attended pairs j ≤ i already)
        count = member.sum(dim=2)  # N_ij: (b, h, ρG, C, 3C)
        return -torch.log(count.to(torch.float32))

    def fast(self, q, k, v):
        b, h, n, d = q.shape
        length, rounds = padded(n, self.chunk_size), self.n_hashes
        q, k, v = pad_tokens(q, length), pad_tokens(k, length), pad_tokens(v, length)
        plan, perm = self.plan(q)
        order = plan.layout.order
        if rounds == 1:
            o = attend(gather_tokens(q, order, 2), k, v, plan.parts)  # (b, h, G, C, d)
            return o.new_empty(b, h, length, d).scatter(2, perm.view(b, h, length, 1).expand(-1, -1, -1, d), o.view(b, h, length, d))[:, :, :n]
        o, lse = attend(gather_tokens(q, order, 2), k, v, plan.parts, with_lse=True)  # (b, h, ρG, C, ·)
        index = perm.unsqueeze(-1).expand(b, h, rounds, length, d)
        o = o.new_empty(b, h, rounds, length, d).scatter(3, index, o.view(b, h, rounds, length, d))  # o⁽ʳ⁾ by position
        lse = lse.new_empty(b, h, rounds, length).scatter(3, perm, lse.view(b, h, rounds, length))
        weight = torch.softmax(lse, dim=2)  # exp(z⁽ʳ⁾ − z)
        return (o * weight.unsqueeze(-1)).sum(dim=2)[:, :, :n]

    def pairs(self, q, k):
        n = q.shape[2]
        plan, _ = self.plan(pad_tokens(q, padded(n, self.chunk_size)))
        return plan_pairs(plan, n)

    # ------------------------------------------------------------------ the reference

    def dense_pattern(self, q: torch.Tensor) -> torch.Tensor:
        """(b, h, n, n) bool: j ∈ P_i, from buckets and ranks computed by dense comparisons."""
        n = q.shape[2]
        bucket = self.hash(q)  # (b, h, ρ, n)
        same = bucket.unsqueeze(-1) == bucket.unsqueeze(-2)  # (b, h, ρ, n, n)
        rank = same.masked_fill(static_tensor(dense_not_before, n, device=q.device), False).sum(dim=-1)  # earlier same-bucket tokens
        close = rank.unsqueeze(-1) - rank.unsqueeze(-2) <= (rank % self.chunk_size + self.chunk_size).unsqueeze(-1)
        member = (same & close).masked_fill(static_tensor(dense_future, n, device=q.device), False)
        return member.any(dim=2)

    def masked(self, q, k, v):
        n = q.shape[2]
        blocked = self.dense_pattern(q).logical_not()
        return masked_attention(q, k, v, blocked, static_tensor(np.eye, n, device=q.device))

    # ------------------------------------------------------------------ decode: the full cache

    def init_state(self, batch: int) -> dict[str, torch.Tensor]:
        w = self.v_proj.weight
        empty = w.new_zeros(batch, self.n_heads, 0, self.head_dim)
        ints = torch.zeros(batch, self.n_heads, self.n_hashes, 0, dtype=torch.long, device=w.device)
        return {"key": empty, "value": empty.clone(), "bucket": ints, "rank": ints.clone(),
                "count": torch.zeros(batch, self.n_heads, self.n_hashes, self.n_buckets, dtype=torch.long, device=w.device)}

    def cache(self, q, k, v) -> dict[str, torch.Tensor]:
        bucket = self.hash(q)  # (b, h, ρ, n)
        perm, _, sorted_rank, count = ranks_in_bucket(bucket, self.n_buckets)
        rank = torch.empty_like(sorted_rank).scatter(-1, perm, sorted_rank)
        return {"key": k.contiguous(), "value": v.contiguous(), "bucket": bucket, "rank": rank, "count": count}

    def step(self, x_t: torch.Tensor, state: dict[str, torch.Tensor]):
        q, k_t, v_t = self.project(x_t)  # (b, h, 1, d)
        bucket_t = self.hash(q)  # (b, h, ρ, 1)
        rank_t = state["count"].gather(-1, bucket_t)  # earlier tokens in its bucket
        count = state["count"].scatter_add(-1, bucket_t, torch.ones_like(bucket_t))
        bucket = torch.cat([state["bucket"], bucket_t], dim=-1)  # (b, h, ρ, t + 1)
        rank = torch.cat([state["rank"], rank_t], dim=-1)
        k = torch.cat([state["key"], k_t], dim=2)  # (b, h, t + 1, d)
        v = torch.cat([state["value"], v_t], dim=2)
        member = (bucket == bucket_t) & (rank_t - rank <= rank_t % self.chunk_size + self.chunk_size)  # (b, h, ρ, t + 1)
        blocked = member.any(dim=2).logical_not().unsqueeze(2)  # (b, h, 1, t + 1)
        itself = torch.zeros(k.shape[2], dtype=torch.bool, device=k.device)
        itself[-1] = True
        o = masked_attention(q, k, v, blocked, itself)  # (b, h, 1, d)
        return self.output(o), {"key": k, "value": v, "bucket": bucket, "rank": rank, "count": count}


# ----------------------------------------------------------------------------- cost model


def _hash_cost(t: Tally, bh: int, rounds: int, n: int, d: int, n_buckets: int) -> None:
    rows = bh * rounds * n
    t.add(2.0 * rows * d * (n_buckets // 2), 0)  # x R_r (the rotations are fixed; no gradient through argmax)
    t.add(rows * (n_buckets // 2), 0)  # −x R_r
    t.add(rows * n_buckets, 0)  # argmax


def reformer_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, h, d = config["batch"], config["seq_len"], config["n_heads"], config["head_dim"]
    β, rounds, C = config["n_buckets"], config["n_hashes"], config["chunk_size"]
    bh = b * h
    state_bytes = 2 * bh * n * d * dtype_bytes(config) + 2 * bh * rounds * n * 8 + bh * rounds * β * 8
    if mode == "decode":

        def per_token(context: int) -> float:
            t = Tally()
            projections(t, config, b, shared_qk=True)
            _hash_cost(t, bh, rounds, 1, d, β)
            t.add(bh * rounds, 0)  # count + 1
            t.add(bh * rounds * (4 * context + 2), 0)  # ==, −, % C + C, ≤, & over the cache
            t.add(bh * rounds * context + bh * context, 0)  # any over rounds, not
            t.matmul(bh, 1, d, context)
            t.softmax(bh * context)
            t.matmul(bh, 1, context, d)
            return t.forward

        return Cost(mean_over_decode(config, per_token), state_bytes)
    t = Tally()
    projections(t, config, b * n, shared_qk=True)
    if config["impl"] == "masked":
        pairs = bh * rounds * n * n
        _hash_cost(t, bh, rounds, n, d, β)
        t.add(pairs, 0)  # same bucket
        t.add(pairs, 0)  # rank: sum over earlier tokens
        t.add(2 * bh * rounds * n, 0)  # % C + C
        t.add(3 * pairs, 0)  # −, ≤, &
        t.add(pairs + bh * n * n, 0)  # any over rounds, not
        masked_cost(t, config, n)
        return Cost(t.total(mode), state_bytes)
    length = padded(n, C)
    G = length // C
    rows = bh * rounds * length  # queries over all rounds
    slots = rows * 3 * C  # (query, key slot) pairs over all rounds
    _hash_cost(t, bh, rounds, length, d, β)
    t.add(2 * rows, 0)  # bucket·n + position
    t.add(rows * np.log2(max(length, 2)), 0)  # sort
    t.add(bh * rounds * (β + 1), 0)  # where each bucket starts: bucket·n
    t.add(rows + bh * rounds * β, 0)  # rank = slot − start of its bucket; counts
    t.add(2 * rows, 0)  # rank % C + C
    t.add(2 * slots, 0)  # lag > limit, bucket ≠
    if rounds > 1:
        t.add(2 * rows * rounds, 0)  # rank % C + C for every round's view of each query
        t.add(4 * slots * rounds, 0)  # ==, −, ≤, & per round r'
        t.add(slots * rounds, 0)  # N_ij: sum over rounds
        t.add(2 * slots, 0)  # −log N
    attend_cost(t, config, rounds * G, C, [("group", 3 * C)], length, bias_parts=int(rounds > 1), with_lse=rounds > 1,
                query_gathered=True)
    if rounds > 1:
        t.softmax(bh * rounds * length)  # exp(z⁽ʳ⁾ − z)
        t.elementwise(bh * rounds * length * d, 1, 2)  # o⁽ʳ⁾ · weight; backward: grads of both
        t.add(bh * rounds * length * d, bh * rounds * length * d)  # Σ_r; backward: the weight's grad sums over d
    return Cost(t.total(mode), state_bytes)


def _validate(config: dict[str, Any]) -> None:
    if config["n_buckets"] % 2 or config["n_buckets"] < 2:
        raise ConfigError(f"n_buckets={config['n_buckets']} must be even (argmax over [xR; −xR]); accepted: 2, 4, 8, …")


@register(
    MechanismSpec(
        name="reformer",
        complexity={"prefill": "O(n_h·N·(log N + C·d))", "train": "O(n_h·N·(log N + C·d))", "decode": "O(N·d) per token", "state": "O(N·d)"},
        family="sparse",
        summary="Reformer: causal shared-QK LSH attention, n_hashes rounds of n_buckets, sorted chunks of chunk_size",
        paper=Paper("Reformer: The Efficient Transformer", 2020, "2001.04451"),
        causal=True,
        defaults={"n_heads": 2, "head_dim": None, "impl": "sorted", "n_buckets": 8, "n_hashes": 2, "chunk_size": 32},
        choices={"impl": IMPLS},
        cost=reformer_cost,
        validate=_validate,
        pattern=lambda config: pattern_lists("reformer", config),
        tests=TestHooks(overrides={"n_buckets": 4, "n_hashes": 2, "chunk_size": 2}),
        # decode keeps every key: the pattern needs every earlier key's bucket
        claims=(
            *sparse_claims(("sorted",), decode_state=1.0, decode_flops=1.0),
            # counted at seq_len 1024 (effprof sweep --count-only, n_hashes 1..32): 1.0e8 + 5.4e7·h + 9.8e5·h²
            Claim("flops", "n_hashes", 2.0, "forward", {"impl": "sorted"},
                  note="quadratic above n_hashes ≈ 55 at seq_len 1024 and the defaults, linear below: counted "
                       "1.0e8 + 5.4e7·h + 9.8e5·h² FLOPs (a term in h² beside the h rounds of hashing and attention)"),
        ),
    )
)
def build_reformer(config: dict[str, Any]) -> ReformerAttention:
    return ReformerAttention(config)
