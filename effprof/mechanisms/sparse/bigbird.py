"""BigBird block-sparse attention: window + global + random blocks (Zaheer et al. 2020, BigBird-ITC).

Positions are cut into blocks of B; query block I = ⌊i/B⌋ attends, causally,

    window:  the w/B blocks I − w/B + 1 … I                    (its own block and the ones before)
    global:  the first g positions                             (which attend everything before them)
    random:  R(I), n_random_blocks blocks drawn once (fixed seed) from the blocks before the window
             that are not wholly global

    P_i = { j ≤ i : ⌊j/B⌋ ∈ window(I) ∪ R(I)  or  j < g }
    o_i = Σ_{j ∈ P_i} exp(q_iᵀk_j / √d) v_j / Σ_{j ∈ P_i} exp(q_iᵀk_j / √d)

R(I) depends only on I and the seed (a hash of (seed, I, J) ranks the candidate blocks J),
never on n, so the pattern is causal and decode reproduces the forward pass.

Glossary: b batch, n seq_len, h n_heads, d head_dim, B block_size, w window (a multiple of B),
g n_global, r n_random_blocks, m = ⌈n/B⌉ blocks.

Forms (config `impl`), the same function:
- masked: dense n×n scores, −∞ outside P_i (the reference).
- blocked: each query block gathers its w window keys and its r·B random keys, plus one shared
  list of the g global keys; one softmax over all three. O(n·(w + r·B + g)·d): linear in n.
- fused (the default): the same key lists, gathered once into one list per block and run through torch's
  fused attention kernel in one call, the blocked slots a precomputed −∞ bias (attend.fused_plan): no score
  matrix in memory; the same pairs computed as blocked.

Decode keeps every key and value, since a random block may be any earlier block: state O(n·d);
a step attends the same w + r·B + g keys, so its cost does not grow with n.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from effprof.config import ConfigError
from effprof.cost_model import Tally, dtype_bytes, mean_over_decode
from effprof.mechanisms.sparse.attend import masked_attention
from effprof.mechanisms.sparse.cost import attend_cost, decode_step_flops, fused_cost, masked_cost, projections, sparse_claims
from effprof.mechanisms.sparse.layer import StaticPlanAttention
from effprof.mechanisms.sparse.layout import Layout
from effprof.mechanisms.sparse.pairs import pattern_lists
from effprof.mechanisms.sparse.static import StaticPart, padded, static_plan, static_tensor
from effprof.registry import Cost, MechanismSpec, Paper, TestHooks, register

IMPLS = ("masked", "blocked", "fused")
SEED = 0


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread 64-bit hash (uint64 arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def random_blocks(query_blocks: np.ndarray, window_blocks: int, global_blocks: int, n_random: int, seed: int = SEED) -> np.ndarray:
    """R(I) for each query block I: (len, n_random) block indices, −1 where fewer candidates exist.

    Candidates J ∈ [global_blocks, I − window_blocks]; the n_random with the smallest hash(seed, I, J).
    """
    query_blocks = np.asarray(query_blocks, dtype=np.int64)
    top = int(query_blocks.max(initial=0)) + 1
    J = np.arange(top, dtype=np.uint64)[None, :]
    I = query_blocks.astype(np.uint64)[:, None]
    with np.errstate(over="ignore"):
        rank = _mix(_mix(np.uint64(seed) + I * np.uint64(0x9E3779B97F4A7C15)) ^ J)
    eligible = (J.astype(np.int64) >= global_blocks) & (J.astype(np.int64) <= query_blocks[:, None] - window_blocks)
    rank = np.where(eligible, rank, np.iinfo(np.uint64).max)
    order = np.argsort(rank, axis=1, kind="stable")[:, :n_random]  # (len, ≤ r)
    chosen = np.take_along_axis(eligible, order, axis=1)
    picked = np.where(chosen, order, -1)
    if picked.shape[1] < n_random:
        picked = np.pad(picked, ((0, 0), (0, n_random - picked.shape[1])), constant_values=-1)
    return picked


def bigbird_plan(n: int, block: int, window: int, n_global: int, n_random: int) -> tuple[Layout, list[StaticPart]]:
    B, w_b = block, window // block
    length = padded(n, B)
    m = length // B
    layout = Layout(length, B)
    queries = layout.positions()[:, :, None]  # (m, B, 1)
    g = min(n_global, n)
    window_keys = (np.arange(m)[:, None] - w_b + 1) * B + np.arange(w_b * B)  # (m, w)
    parts = [StaticPart("group", window_keys, (window_keys[:, None, :] < max(g, 0)) | (window_keys[:, None, :] > queries))]
    if n_random:
        R = random_blocks(np.arange(m), w_b, n_global // B, n_random)  # (m, r)
        random_keys = (R[:, :, None] * B + np.arange(B)).reshape(m, n_random * B)
        invalid = np.repeat(R < 0, B, axis=1)[:, None, :]
        parts.append(StaticPart("group", random_keys, np.broadcast_to(invalid | (random_keys[:, None, :] < g), (m, B, n_random * B))))
    if g:
        keys = np.arange(g)
        parts.append(StaticPart("shared", keys, keys > queries))
    return layout, parts


def bigbird_blocked(n: int, block: int, window: int, n_global: int, n_random: int) -> np.ndarray:
    """Dense (n, n) mask of the reference: True where query i does not attend key j."""
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    I, J = i // block, j // block
    in_window = I - J < window // block
    R = random_blocks(np.arange(-(-n // block)), window // block, n_global // block, n_random)  # (m, r)
    in_random = (R[I[:, 0]][:, None, :] == J[:, :, None]).any(-1) if n_random else np.zeros((n, n), bool)
    return (j > i) | ~(in_window | in_random | (j < n_global))


def decode_keys(t: int, block: int, window: int, n_global: int, n_random: int) -> np.ndarray:
    """Positions the query at position t attends (global, window, random), as the plan orders them."""
    I, w_b = t // block, window // block
    g = min(n_global, t + 1)
    window_keys = np.arange(max(n_global, (I - w_b + 1) * block, 0), t + 1)
    random_keys = np.zeros(0, dtype=np.int64)
    if n_random:
        R = random_blocks(np.array([I]), w_b, n_global // block, n_random)[0]
        R = R[R >= 0]
        random_keys = (R[:, None] * block + np.arange(block)).reshape(-1)
        random_keys = random_keys[random_keys >= n_global]
    return np.concatenate([np.arange(g), window_keys, random_keys])


class BigBirdAttention(StaticPlanAttention):
    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.block_size, self.window = config["block_size"], config["window"]
        self.n_global, self.n_random = config["n_global"], config["n_random_blocks"]

    def plan(self, n: int, device: torch.device):
        return static_plan(bigbird_plan, n, self.block_size, self.window, self.n_global, self.n_random, device=device)

    def plan_args(self, n: int) -> tuple:
        return (bigbird_plan, n, self.block_size, self.window, self.n_global, self.n_random)

    def masked(self, q, k, v):
        blocked = static_tensor(bigbird_blocked, q.shape[2], self.block_size, self.window, self.n_global, self.n_random, device=q.device)
        return masked_attention(q, k, v, blocked)

    # decode: every key (random blocks reach anywhere before the window)
    def init_state(self, batch: int) -> dict[str, torch.Tensor]:
        empty = self.v_proj.weight.new_zeros(batch, self.n_heads, 0, self.head_dim)
        return {"key": empty, "value": empty.clone()}

    def cache(self, q, k, v) -> dict[str, torch.Tensor]:
        return {"key": k.contiguous(), "value": v.contiguous()}

    def step(self, x_t: torch.Tensor, state: dict[str, torch.Tensor]):
        q, k_t, v_t = self.project(x_t)  # (b, h, 1, d)
        k = torch.cat([state["key"], k_t], dim=2)  # (b, h, t + 1, d)
        v = torch.cat([state["value"], v_t], dim=2)
        index = torch.as_tensor(decode_keys(k.shape[2] - 1, self.block_size, self.window, self.n_global, self.n_random), device=k.device)
        o = torch.softmax(q @ k[:, :, index].transpose(-2, -1), dim=-1) @ v[:, :, index]  # (b, h, 1, d)
        return self.output(o), {"key": k, "value": v}


# ----------------------------------------------------------------------------- cost model


def bigbird_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, h, d = config["batch"], config["seq_len"], config["n_heads"], config["head_dim"]
    B, w, g, r = config["block_size"], config["window"], config["n_global"], config["n_random_blocks"]
    state_bytes = 2 * b * h * n * d * dtype_bytes(config)
    if mode == "decode":

        def per_token(context: int) -> float:
            return decode_step_flops(config, len(decode_keys(context - 1, B, w, g, r)))

        return Cost(mean_over_decode(config, per_token), state_bytes)
    t = Tally()
    projections(t, config, b * n)
    if config["impl"] == "masked":
        masked_cost(t, config, n)
    else:
        length = padded(n, B)
        parts = [("group", w)] + ([("group", r * B)] if r else []) + ([("shared", min(g, n))] if g else [])
        if config["impl"] == "fused":
            fused_cost(t, config, length // B, B, [width for _, width in parts])
        else:
            attend_cost(t, config, length // B, B, parts, length)
    return Cost(t.total(mode), state_bytes)


def _validate(config: dict[str, Any]) -> None:
    B, w = config["block_size"], config["window"]
    if w % B:
        raise ConfigError(f"window={w} is not a multiple of block_size={B}; BigBird's window is whole blocks, e.g. window={max(B, w // B * B)}")


@register(
    MechanismSpec(
        name="bigbird",
        complexity={"prefill": "O(N·(w + g + r·B)·d)", "train": "O(N·(w + g + r·B)·d)", "decode": "O((w + g + r·B)·d) per token", "state": "O(N·d)"},
        family="sparse",
        summary="BigBird: causal window blocks + global tokens + n_random_blocks fixed-seed random blocks per query block",
        paper=Paper("Big Bird: Transformers for Longer Sequences", 2020, "2007.14062"),
        causal=True,
        defaults={"n_heads": 2, "head_dim": None, "impl": "fused", "block_size": 32, "window": 64, "n_global": 32,
                  "n_random_blocks": 2},
        choices={"impl": IMPLS},
        cost=bigbird_cost,
        validate=_validate,
        pattern=lambda config: pattern_lists("bigbird", config),
        tests=TestHooks(overrides={"block_size": 3, "window": 3, "n_global": 2, "n_random_blocks": 2}),
        # decode keeps every key: random blocks may be any earlier block
        claims=(
            *sparse_claims(("blocked", "fused"), decode_state=1.0, decode_flops=0.0),
        ),
    )
)
def build_bigbird(config: dict[str, Any]) -> BigBirdAttention:
    return BigBirdAttention(config)
