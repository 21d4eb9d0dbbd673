"""Sparse Transformer factorised attention: strided and fixed patterns (Child et al. 2019).

With stride l, each query attends the union of two subsets (the paper's "merged head"):

    strided:  A⁽¹⁾_i = { j : i − l < j ≤ i }                     the previous l positions
              A⁽²⁾_i = { j ≤ i : (i − j) mod l = 0 }              every l-th position before it
    fixed:    A⁽¹⁾_i = { j ≤ i : ⌊j/l⌋ = ⌊i/l⌋ }                  its own block of l
              A⁽²⁾_i = { j ≤ i : j mod l ∈ {l − c, …, l − 1} }     the last c "summary" columns of every block

    o_i = Σ_{j ∈ A⁽¹⁾_i ∪ A⁽²⁾_i} exp(q_iᵀk_j / √d) v_j / Σ_{j ∈ A⁽¹⁾_i ∪ A⁽²⁾_i} exp(q_iᵀk_j / √d)

Any position reaches any earlier one in two steps (through A⁽²⁾ then A⁽¹⁾). Each query sees
about l + n/l keys (c·n/l summary keys in the fixed pattern): with l ≈ √n the layer costs
O(n√n·d), as in the paper; at a fixed stride the summary term grows as n²/l.

Glossary: b batch, n seq_len, h n_heads, d head_dim, l stride, c n_summary, m = ⌈n/l⌉ blocks.

Forms (config `impl`), the same function:
- masked: dense n×n scores, −∞ outside the pattern (the reference).
- blocked:
  strided: queries arranged by residue class (i mod l): A⁽²⁾ is causal attention among the n/l
           positions of one class (one shared key list per class), A⁽¹⁾ a per-query gather of
           its l previous keys; one softmax over both.
  fixed:   queries in blocks of l: A⁽¹⁾ the block itself (causal within it), A⁽²⁾ one shared
           list of the c·m summary keys, each block masking the summaries of later blocks.
  O(n·(l + n/l)·d) (strided), O(n·(l + c·n/l)·d) (fixed).

Decode: strided keeps every key (later queries reach every residue class): O(n) state, a step
attends l + t/l keys. Fixed keeps the summary columns of past blocks and the current block:
c·⌊n/l⌋ + (n mod l) keys, ∝ n·c/l.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from effprof.config import ConfigError, declare_key
from effprof.cost_model import Tally, dtype_bytes, mean_over_decode
from effprof.mechanisms.sparse.attend import masked_attention
from effprof.mechanisms.sparse.cost import attend_cost, decode_step_flops, masked_cost, projections
from effprof.mechanisms.sparse.layer import StaticPlanAttention
from effprof.mechanisms.sparse.layout import Layout
from effprof.mechanisms.sparse.pairs import pattern_lists
from effprof.mechanisms.sparse.static import StaticPart, padded, static_plan, static_tensor
from effprof.registry import Claim, Cost, MechanismSpec, Paper, TestHooks, register

IMPLS = ("masked", "blocked")
PATTERNS = ("strided", "fixed")
declare_key("n_summary", int, "summary columns c per block of the Sparse Transformer fixed pattern")


def strided_plan(n: int, stride: int) -> tuple[Layout, list[StaticPart]]:
    """Residue classes of l as groups of n'/l queries: A⁽¹⁾ per query (row), A⁽²⁾ per class (group)."""
    l = stride
    length = padded(n, l)
    r = length // l
    u = np.arange(r)
    positions = np.arange(l)[:, None] + l * u  # (l, r): query ρ + l·u
    local = positions[:, :, None] - (l - 1) + np.arange(l)  # (l, r, l): the previous l positions
    earlier = np.broadcast_to(u[None, :, None] <= u[None, None, :], (l, r, r))  # class members j ≤ i − l only
    return Layout(length, r, l), [StaticPart("row", local, local < 0), StaticPart("group", positions, earlier)]


def fixed_plan(n: int, stride: int, n_summary: int) -> tuple[Layout, list[StaticPart]]:
    """Blocks of l: the block itself (group) and the summary columns of all blocks (shared)."""
    l, c = stride, n_summary
    length = padded(n, l)
    m = length // l
    own = np.arange(m)[:, None] * l + np.arange(l)  # (m, l)
    future = np.broadcast_to(np.arange(l)[None, None, :] > np.arange(l)[None, :, None], (m, l, l))
    summary = (np.arange(m)[:, None] * l + (l - c) + np.arange(c)).reshape(-1)  # (c·m,)
    later = np.broadcast_to(np.repeat(np.arange(m), c)[None, None, :] >= np.arange(m)[:, None, None], (m, l, c * m))
    return Layout(length, l), [StaticPart("group", own, future), StaticPart("shared", summary, later)]


def sparse_transformer_blocked(n: int, pattern: str, stride: int, n_summary: int) -> np.ndarray:
    """Dense (n, n) mask of the reference: True where query i does not attend key j."""
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    lag = i - j
    if pattern == "strided":
        return (lag < 0) | ((lag >= stride) & (lag % stride != 0))
    return (lag < 0) | ((i // stride != j // stride) & (j % stride < stride - n_summary))


class SparseTransformerAttention(StaticPlanAttention):
    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.kind, self.stride, self.n_summary = config["pattern"], config["stride"], config["n_summary"]

    def plan(self, n: int, device: torch.device):
        if self.kind == "strided":
            return static_plan(strided_plan, n, self.stride, device=device)
        return static_plan(fixed_plan, n, self.stride, self.n_summary, device=device)

    def masked(self, q, k, v):
        blocked = static_tensor(sparse_transformer_blocked, q.shape[2], self.kind, self.stride, self.n_summary, device=q.device)
        return masked_attention(q, k, v, blocked)



    # decode. strided: every key; fixed: past summary columns + the current block.
    def init_state(self, batch: int) -> dict[str, torch.Tensor]:
        empty = self.v_proj.weight.new_zeros(batch, self.n_heads, 0, self.head_dim)
        if self.kind == "strided":
            return {"key": empty, "value": empty.clone()}
        return {"summary_key": empty, "summary_value": empty.clone(), "block_key": empty.clone(), "block_value": empty.clone()}

    def cache(self, q, k, v) -> dict[str, torch.Tensor]:
        if self.kind == "strided":
            return {"key": k.contiguous(), "value": v.contiguous()}
        l, c, n = self.stride, self.n_summary, k.shape[2]
        complete = n // l * l
        summary = torch.arange(complete, device=k.device).view(-1, l)[:, l - c:].reshape(-1)  # summary positions
        return {"summary_key": k[:, :, summary], "summary_value": v[:, :, summary],
                "block_key": k[:, :, complete:].clone(), "block_value": v[:, :, complete:].clone()}

    def step(self, x_t: torch.Tensor, state: dict[str, torch.Tensor]):
        q, k_t, v_t = self.project(x_t)  # (b, h, 1, d)
        l = self.stride
        if self.kind == "strided":
            k = torch.cat([state["key"], k_t], dim=2)  # (b, h, t + 1, d)
            v = torch.cat([state["value"], v_t], dim=2)
            t = k.shape[2] - 1
            start = max(0, t - l + 1)  # A⁽¹⁾: positions start … t;  A⁽²⁾: t mod l, t mod l + l, … < start
            keys = torch.cat([k[:, :, t % l:start:l], k[:, :, start:]], dim=2)
            values = torch.cat([v[:, :, t % l:start:l], v[:, :, start:]], dim=2)
            new_state = {"key": k, "value": v}
        else:
            block_k = torch.cat([state["block_key"], k_t], dim=2)  # the current block, itself included
            block_v = torch.cat([state["block_value"], v_t], dim=2)
            keys = torch.cat([state["summary_key"], block_k], dim=2)
            values = torch.cat([state["summary_value"], block_v], dim=2)
            if block_k.shape[2] == l:  # the block is complete: keep its summary columns only
                c = self.n_summary
                new_state = {"summary_key": torch.cat([state["summary_key"], block_k[:, :, l - c:]], dim=2),
                             "summary_value": torch.cat([state["summary_value"], block_v[:, :, l - c:]], dim=2),
                             "block_key": block_k[:, :, :0].clone(), "block_value": block_v[:, :, :0].clone()}
            else:
                new_state = {**state, "block_key": block_k, "block_value": block_v}
        o = torch.softmax(q @ keys.transpose(-2, -1), dim=-1) @ values  # (b, h, 1, d)
        return self.output(o), new_state


# ----------------------------------------------------------------------------- cost model


def decode_keys(config: dict[str, Any], t: int) -> int:
    """Keys the query at position t attends."""
    l, c = config["stride"], config["n_summary"]
    if config["pattern"] == "strided":
        start = max(0, t - l + 1)
        return (t + 1 - start) + len(range(t % l, start, l))
    return c * (t // l) + t % l + 1


def sparse_transformer_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, h, d = config["batch"], config["seq_len"], config["n_heads"], config["head_dim"]
    l, c = config["stride"], config["n_summary"]
    kept = n if config["pattern"] == "strided" else c * (n // l) + n % l
    state_bytes = 2 * b * h * kept * d * dtype_bytes(config)
    if mode == "decode":

        def per_token(context: int) -> float:
            return decode_step_flops(config, decode_keys(config, context - 1))

        return Cost(mean_over_decode(config, per_token), state_bytes)
    t = Tally()
    projections(t, config, b * n)
    length = padded(n, l)
    if config["impl"] == "masked":
        masked_cost(t, config, n)
    elif config["pattern"] == "strided":
        attend_cost(t, config, l, length // l, [("row", l), ("group", length // l)], length)
    else:
        m = length // l
        attend_cost(t, config, m, l, [("group", l), ("shared", c * m)], length)
    return Cost(t.total(mode), state_bytes)


def _validate(config: dict[str, Any]) -> None:
    if config["n_summary"] > config["stride"]:
        raise ConfigError(f"n_summary={config['n_summary']} exceeds stride={config['stride']}; accepted: 1 … stride")


@register(
    MechanismSpec(
        name="sparse_transformer",
        complexity={"prefill": "O(N·(l + N/l)·d)", "train": "O(N·(l + N/l)·d)", "decode": "O((l + N/l)·d) per token", "state": "O(N·d)"},
        family="sparse",
        summary="Sparse Transformer strided / fixed factorised patterns (stride l, c summary columns), merged head",
        paper=Paper("Generating Long Sequences with Sparse Transformers", 2019, "1904.10509"),
        causal=True,
        defaults={"n_heads": 2, "head_dim": None, "impl": "blocked", "pattern": "fixed", "stride": 32, "n_summary": 4},
        choices={"impl": IMPLS, "pattern": PATTERNS},
        cost=sparse_transformer_cost,
        validate=_validate,
        pattern=lambda config: pattern_lists("sparse_transformer", config),
        tests=TestHooks(overrides={"stride": 4, "n_summary": 2}),
        claims=(
            # A⁽²⁾ grows with n at a fixed stride: n·(l + c·n/l) pairs, quadratic with a 1/l coefficient
            Claim("flops", "seq_len", 2.0, "forward"),
            Claim("flops", "seq_len", 2.0, "train"),
            Claim("peak_bytes", "seq_len", 2.0, "forward"),
            Claim("state_bytes", "seq_len", 1.0, "decode"),
            Claim("flops", "seq_len", 1.0, "decode"),
        ),
    )
)
def build_sparse_transformer(config: dict[str, Any]) -> SparseTransformerAttention:
    return SparseTransformerAttention(config)
