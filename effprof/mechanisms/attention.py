"""Softmax attention (Vaswani et al. 2017) and its IO-aware tiled form (FlashAttention, Dao et al. 2022).

Notation (the roadmap's, week 4):

    Attention(Q, K, V) = softmax(QKᵀ / √d) V
    MultiHead(Q, K, V) = Concat(head_1, …, head_h) Wᴼ,   head_i = Attention(Q W_iᑫ, K W_iᴷ, V W_iⱽ)

    o_t = Σ_{i≤t} exp(q_tᵀ k_i / √d) v_i / Σ_{i≤t} exp(q_tᵀ k_i / √d)      (causal)

Glossary: b batch, n seq_len, h n_heads, g n_kv_heads (MQA g=1, GQA 1<g<h, MHA g=h),
d head_dim, B block_size.

Forms (config `impl`), all the same function:
- naive: materialises the n×n score matrix S = QKᵀ/√d, masks it, softmax, then P V.
  FLOPs ≈ 4·b·h·n²·d, memory O(n²).
- sdpa: torch's fused scaled_dot_product_attention kernel; causal blocks above the
  diagonal are skipped, so FLOPs ≈ 2·b·h·n²·d.
- tiled: the FlashAttention algorithm written out in torch: loop over key blocks of
  B keys, keep a running max m, denominator ℓ and accumulator O per query (online
  softmax), so no n×n matrix is ever held: peak memory O(n·B), FLOPs ≈ 2·b·h·n²·d.

      for each key block K_j, V_j:              (queries before the block cannot see it: skipped)
          S   = Q K_jᵀ / √d                      (n_j × B)
          m'  = max(m, rowmax(S))
          P   = exp(S − m')
          ℓ   = ℓ·exp(m − m') + rowsum(P)
          O   = O·exp(m − m') + P V_j
      o = O / ℓ

Decode keeps the KV cache, K and V of every past token: 2·b·g·n·d numbers, O(n);
each new token costs O(n·d) per head.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from effprof.config import ConfigError
from effprof.cost_model import SOFTMAX_FLOPS, Tally, causal_pairs, dtype_bytes, mean_over_decode
from effprof.mechanisms.base import Mechanism, merge_heads, split_heads
from effprof.registry import Claim, Cost, MeasureHints, MechanismSpec, Paper, TestHooks, register

IMPLS = ("naive", "sdpa", "tiled")


class SoftmaxAttention(Mechanism):
    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, head_dim: int, impl: str, block_size: int):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.impl, self.block_size = impl, block_size
        self.q_proj = nn.Linear(d_model, n_heads * head_dim, bias=False)  # W^Q
        self.k_proj = nn.Linear(d_model, n_kv_heads * head_dim, bias=False)  # W^K
        self.v_proj = nn.Linear(d_model, n_kv_heads * head_dim, bias=False)  # W^V
        self.o_proj = nn.Linear(n_heads * head_dim, d_model, bias=False)  # W^O

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q = split_heads(self.q_proj(x), self.n_heads)  # (b, h, n, d)
        k = split_heads(self.k_proj(x), self.n_kv_heads)  # (b, g, n, d)
        v = split_heads(self.v_proj(x), self.n_kv_heads)  # (b, g, n, d)
        return q, k, v

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
        """q: (b, h, n_q, d), k/v: (b, g, n_k, d); queries are the last n_q positions -> (b, h, n_q, d)."""
        if self.impl == "naive":
            return naive_attention(q, k, v, causal)
        if self.impl == "sdpa":
            # torch aligns is_causal to the top-left corner, so a lone query (decode) uses no mask.
            return F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal and q.shape[2] > 1), enable_gqa=True)
        return tiled_attention(q, k, v, self.block_size, causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prefill(x)[0]

    def init_state(self, batch: int) -> dict[str, torch.Tensor]:
        w = self.k_proj.weight
        empty = w.new_zeros(batch, self.n_kv_heads, 0, self.head_dim)
        return {"key": empty, "value": empty.clone()}

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        q, k, v = self._qkv(x)
        o = self.attend(q, k, v, causal=True)  # (b, h, n, d)
        return self.o_proj(merge_heads(o)), {"key": k, "value": v}

    def step(self, x_t: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        q, k_t, v_t = self._qkv(x_t)  # (b, h, 1, d), (b, g, 1, d)
        k = torch.cat([state["key"], k_t], dim=2)  # (b, g, n+1, d)
        v = torch.cat([state["value"], v_t], dim=2)
        o = self.attend(q, k, v, causal=False)  # the newest query sees every cached key
        return self.o_proj(merge_heads(o)), {"key": k, "value": v}


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """softmax(QKᵀ/√d) V with the whole (n_q × n_k) score matrix in memory."""
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)  # (b, h, n_k, d): each KV head serves `group` query heads
    v = v.repeat_interleave(group, dim=1)
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))  # S: (b, h, n_q, n_k)
    if causal:
        n_q, n_k = scores.shape[-2:]
        future = torch.ones(n_q, n_k, dtype=torch.bool, device=q.device).triu(n_k - n_q + 1)
        scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v  # P V: (b, h, n_q, d)


def tiled_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_size: int, causal: bool) -> torch.Tensor:
    """FlashAttention's online softmax over key blocks; never holds more than n_q × block_size scores."""
    b, h, n_q, d = q.shape
    g, n_k = k.shape[1], k.shape[2]
    offset = n_k - n_q  # absolute position of query i is offset + i
    q = q.reshape(b, g, (h // g) * n_q, d) if g != h else q  # group query heads by their KV head
    rows = q.shape[2]
    scale = 1.0 / math.sqrt(d)
    m = q.new_full((b, g, rows), float("-inf"))  # running row max
    l = q.new_zeros((b, g, rows))  # running denominator ℓ
    acc = q.new_zeros((b, g, rows, v.shape[-1]))  # running numerator O
    positions = torch.arange(n_q, device=q.device).repeat(h // g) + offset  # (rows,) absolute query positions
    for start in range(0, n_k, block_size):
        end = min(start + block_size, n_k)
        # Causal: queries before `start` cannot see this block; in grouped order they are not contiguous,
        # so with GQA every row is kept and masked. Without grouping, skip them.
        first = max(0, start - offset) if causal and g == h else 0
        s = (q[:, :, first:] @ k[:, :, start:end].transpose(-2, -1)) * scale  # (b, g, rows', B)
        if causal and end - 1 > offset + first:
            key_pos = torch.arange(start, end, device=q.device)
            s = s.masked_fill(key_pos[None, :] > positions[first:, None], float("-inf"))
        m_new = torch.maximum(m[:, :, first:], s.amax(dim=-1))  # m' = max(m, rowmax S)
        p = torch.exp(s - m_new[..., None])  # P = exp(S − m')
        correction = torch.exp(m[:, :, first:] - m_new)  # exp(m − m')
        l = torch.cat([l[:, :, :first], l[:, :, first:] * correction + p.sum(dim=-1)], dim=2)
        acc = torch.cat([acc[:, :, :first], acc[:, :, first:] * correction[..., None] + p @ v[:, :, start:end]], dim=2)
        m = torch.cat([m[:, :, :first], m_new], dim=2)
    out = acc / l[..., None]  # o = O / ℓ
    return out.reshape(b, h, n_q, -1)


# ----------------------------------------------------------------------------- cost model


def _attention_core(t: Tally, config: dict[str, Any], n_q: int, n_k: int, causal: bool) -> None:
    """FLOPs of attend() for n_q queries (the last of n_k positions), all heads, whole batch."""
    b, h, g, d = config["batch"], config["n_heads"], config["n_kv_heads"], config["head_dim"]
    impl = config["impl"]
    if impl == "naive":
        pairs = b * h * n_q * n_k
        t.matmul(b * h, n_q, d, n_k)  # S = Q Kᵀ
        t.elementwise(pairs)  # · 1/√d
        t.softmax(pairs)
        t.matmul(b * h, n_q, n_k, d)  # P V
        if g != h:  # backward of repeat_interleave sums the gradients of each group into its KV head
            t.add(0, 2 * b * h * n_k * d)
        return
    if impl == "sdpa":
        pairs = b * h * (causal_pairs(n_q, n_k) if causal and n_q > 1 else n_q * n_k)
        t.add(pairs * (4.0 * d + SOFTMAX_FLOPS), pairs * (8.0 * d + 4))
        return
    _tiled_core(t, config, n_q, n_k, causal)


def _tiled_core(t: Tally, config: dict[str, Any], n_q: int, n_k: int, causal: bool) -> None:
    b, h, g, d, block = config["batch"], config["n_heads"], config["n_kv_heads"], config["head_dim"], config["block_size"]
    offset = n_k - n_q
    rows_total = (h // g) * n_q
    for start in range(0, n_k, block):
        width = min(block, n_k - start)
        first = max(0, start - offset) if causal and g == h else 0
        rows = b * g * (rows_total - first)
        pairs = rows * width
        t.matmul(1, rows, d, width)  # S = Q K_jᵀ
        t.elementwise(pairs, 1, 1)  # scale
        t.add(pairs, 0)  # rowmax (amax): a reduction
        t.elementwise(rows, 1, 2)  # maximum(m, rowmax)
        t.elementwise(pairs, 2, 3)  # S − m', exp
        t.elementwise(rows, 2, 4)  # m − m', exp
        t.add(pairs, pairs)  # rowsum P
        t.elementwise(rows, 2, 2)  # ℓ·corr + rowsum
        t.matmul(1, rows, width, d)  # P V_j
        t.elementwise(rows * d, 2, 3)  # O·corr + PV
    t.elementwise(b * g * rows_total * d, 1, 2)  # O / ℓ


def softmax_attention_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, dm = config["batch"], config["seq_len"], config["d_model"]
    h, g, d = config["n_heads"], config["n_kv_heads"], config["head_dim"]
    cache_bytes = 2 * b * g * n * d * dtype_bytes(config)  # K and V of every token

    def projections(t: Tally, tokens: int) -> None:
        t.linear(tokens, dm, h * d)  # Q
        t.linear(tokens, dm, g * d)  # K
        t.linear(tokens, dm, g * d)  # V
        t.linear(tokens, h * d, dm)  # O
        t.add(0, 2 * tokens * dm)  # dx: the gradients through Q, K and V are summed

    if mode == "decode":

        def per_token(context: int) -> float:
            t = Tally()
            projections(t, b)
            _attention_core(t, config, 1, context, causal=False)
            return t.forward

        return Cost(mean_over_decode(config, per_token), cache_bytes)
    t = Tally()
    projections(t, b * n)
    _attention_core(t, config, n, n, causal=True)
    activations = 8 * b * n * max(dm, h * d) * dtype_bytes(config)
    if config["impl"] == "naive":  # scores, masked scores and probabilities: n×n per head
        activations += 3 * b * h * n * n * dtype_bytes(config)
    elif config["impl"] == "tiled":
        activations += 3 * b * h * n * config["block_size"] * dtype_bytes(config)
    return Cost(t.total(mode), cache_bytes, {"peak_bytes": activations})


def _validate(config: dict[str, Any]) -> None:
    if config["impl"] == "tiled" and config["block_size"] > 1 << 16:
        raise ConfigError(f"block_size={config['block_size']} is too large for tiled attention; at most 65536")


@register(
    MechanismSpec(
        name="softmax_attention",
        family="attention",
        summary="Multi-head causal softmax attention (MHA/GQA/MQA) with naive, fused-kernel and FlashAttention-tiled forms",
        paper=Paper("Attention Is All You Need", 2017, "1706.03762"),
        causal=True,
        defaults={"n_heads": 2, "n_kv_heads": None, "head_dim": None, "impl": "sdpa", "block_size": 128},
        choices={"impl": IMPLS},
        cost=softmax_attention_cost,
        validate=_validate,
        measure=MeasureHints(loop_impls=("tiled",)),
        complexity={"prefill": "O(N²d)", "train": "O(N²d)", "decode": "O(Nd) per token", "state": "O(N·g·d) KV cache"},
        tests=TestHooks(overrides={"block_size": 8}),
        claims=(
            Claim("flops", "seq_len", 2.0, "forward"),
            Claim("flops", "seq_len", 2.0, "train"),
            Claim("state_bytes", "seq_len", 1.0, "decode"),
            Claim("flops", "seq_len", 1.0, "decode"),
            Claim("peak_bytes", "seq_len", 2.0, "forward", {"impl": "naive"}),
            Claim("peak_bytes", "seq_len", 1.0, "forward", {"impl": "tiled"}),
            Claim("peak_bytes", "seq_len", 1.0, "forward", {"impl": "sdpa"}),
        ),
    )
)
def build_softmax_attention(config: dict[str, Any]) -> SoftmaxAttention:
    return SoftmaxAttention(
        config["d_model"], config["n_heads"], config["n_kv_heads"], config["head_dim"], config["impl"], config["block_size"]
    )
