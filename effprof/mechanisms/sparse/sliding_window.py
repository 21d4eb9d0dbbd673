"""Sliding-window (local) attention, with a dilated variant (Beltagy et al. 2020, "Longformer", §3.1).

Each query attends the `window` most recent keys, itself included, spaced `dilation` apart:

    P_i = { i − δ·u : 0 ≤ u < w,  i − δ·u ≥ 0 }
    o_i = Σ_{j ∈ P_i} exp(q_iᵀk_j / √d) v_j / Σ_{j ∈ P_i} exp(q_iᵀk_j / √d)

The receptive field is δ·(w − 1) + 1 tokens; stacking layers grows it linearly.

Glossary: b batch, n seq_len, h n_heads, d head_dim, w window, δ dilation, B block_size
(queries per block of the blocked form).

Forms (config `impl`), the same function:
- masked: dense n×n scores, −∞ outside P_i (the reference; O(n²·d)).
- blocked: positions are split into δ residue classes (i mod δ), each a plain sliding window
  over its n/δ tokens; within a class, each block of B queries gathers the band of
  w + B − 1 keys that covers it, and a (B × (w + B − 1)) mask keeps each query's own w.
  O(n·(w + B)·d) FLOPs and memory: linear in n, linear in w.
- fused (the default): the same blocks and bands, all through torch's fused attention kernel in one call,
  on strided views of the projections (token-major, no copy of q, k or v), with one precomputed (B × L)
  band bias shared by every block past the first ⌈(w − 1)/B⌉. Computes n·(w + B − 1) (query, key) pairs,
  (B − 1)/w more than the pattern's n·w; the cost model counts what is computed.

Decode keeps the last δ·(w − 1) keys and values, whatever n: state O(δ·w·d), step O(w·d).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from effprof.config import ConfigError
from effprof.cost_model import SOFTMAX_BACKWARD_FLOPS, SOFTMAX_FLOPS, Tally, dtype_bytes, mean_over_decode
from effprof.mechanisms.sparse.attend import masked_attention
from effprof.mechanisms.sparse.cost import attend_cost, decode_step_flops, masked_cost, projections, sparse_claims
from effprof.mechanisms.sparse.layer import StaticPlanAttention
from effprof.mechanisms.sparse.layout import Layout
from effprof.mechanisms.sparse.pairs import pattern_lists
from effprof.mechanisms.sparse.static import StaticPart, padded, static_plan, static_tensor
from effprof.registry import Claim, Cost, MechanismSpec, Paper, TestHooks, register

IMPLS = ("masked", "blocked", "fused")


def window_plan(n: int, window: int, dilation: int, block: int) -> tuple[Layout, list[StaticPart]]:
    """Query blocks of B within each residue class; each gathers the band of w + B − 1 keys that covers it."""
    w, δ, B = window, dilation, block
    length = padded(n, δ * B)
    blocks = length // (δ * B)
    L = w + B - 1
    u_query = np.arange(blocks)[:, None] * B + np.arange(B)  # (blocks, B) index within the residue class
    u_key = np.arange(blocks)[:, None] * B - (w - 1) + np.arange(L)  # (blocks, L)
    lag = u_query[:, :, None] - u_key[:, None, :]  # (blocks, B, L): i − j in steps of δ
    blocked = (lag < 0) | (lag >= w) | (u_key[:, None, :] < 0)
    residue = np.arange(δ)[:, None, None]
    index = (residue + δ * u_key[None]).reshape(δ * blocks, L)  # (G, L) key positions
    blocked = np.broadcast_to(blocked[None], (δ, blocks, B, L)).reshape(δ * blocks, B, L)
    return Layout(length, B, δ), [StaticPart("group", index, blocked)]


def band_allowed(groups: int, window: int, block: int) -> np.ndarray:
    """(G, B, L) True where query i of block g attends slot j of its band of L = w + B − 1 keys.

    Slot j holds key position g·B − (w − 1) + j (before the front padding is removed): attended
    when 0 ≤ lag = i + (w − 1) − j < w and the key position is not negative.
    """
    B, L = block, window + block - 1
    lag = np.arange(B)[:, None] + (window - 1) - np.arange(L)[None, :]
    position = np.arange(groups)[:, None, None] * B - (window - 1) + np.arange(L)[None, None, :]
    return ((lag >= 0) & (lag < window))[None] & (position >= 0)


def band_bias(groups: int, window: int, block: int) -> np.ndarray:
    """(G, B, L) additive bias of the fused form: 0 where band_allowed, −∞ elsewhere."""
    return np.where(band_allowed(groups, window, block), 0.0, -np.inf).astype(np.float32)


def window_blocked(n: int, window: int, dilation: int) -> np.ndarray:
    """Dense (n, n) mask of the reference: True where query i does not attend key j."""
    lag = np.arange(n)[:, None] - np.arange(n)[None, :]
    return (lag < 0) | (lag % dilation != 0) | (lag // dilation >= window)


class SlidingWindowAttention(StaticPlanAttention):
    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.window, self.dilation, self.block_size = config["window"], config["dilation"], config["block_size"]

    def plan(self, n: int, device: torch.device):
        return static_plan(window_plan, n, self.window, self.dilation, self.block_size, device=device)

    def masked(self, q, k, v):
        blocked = static_tensor(window_blocked, q.shape[2], self.window, self.dilation, device=q.device)
        return masked_attention(q, k, v, blocked)

    def attention(self, q, k, v):
        if self.impl != "fused":
            return super().attention(q, k, v)
        b, h, n, d = q.shape  # (b, h, n, d), q scaled: to the fused form's token-major layout and back
        o = self.band_attention(*(t.permute(2, 0, 1, 3).reshape(n, b, h * d) for t in (q, k, v)), scale=1.0)  # (n, b, h·d)
        return o.view(n, b, h, d).permute(1, 2, 0, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fused_layer(x)[0] if self.impl == "fused" else super().forward(x)

    def prefill(self, x: torch.Tensor):
        if self.impl != "fused":
            return super().prefill(x)
        y, k, v = self.fused_layer(x)  # k, v: (n, b, h·d)
        n, b, keep = k.shape[0], k.shape[1], min(self.memory, k.shape[0])
        return y, {name: t[n - keep:].view(keep, b, self.n_heads, self.head_dim).permute(1, 2, 0, 3).contiguous()
                   for name, t in (("key", k), ("value", v))}

    def fused_layer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (b, n, d_model) -> y (b, n, d_model), k and v (n, b, h·d).

        Token-major throughout: the projections read x as (n, b, d_model) (a view when b = 1, one copy of x
        otherwise), so q, k, v are (n, b·h·d) matrices in which every head's band is a strided view; 1/√d is
        sdpa's `scale` (no scaled copy of q); the output is written once, in the layout o_proj reads.
        """
        b = x.shape[0]
        xt = x.transpose(0, 1)  # (n, b, d_model)
        xt = xt.contiguous() if b > 1 else xt
        q, k, v = self.q_proj(xt), self.k_proj(xt), self.v_proj(xt)  # (n, b, h·d)
        y = self.o_proj(self.band_attention(q, k, v, self.scale))  # (n, b, d_model)
        return y.transpose(0, 1).contiguous() if b > 1 else y.transpose(0, 1), k, v

    def band_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        """q, k, v: (n, b, h·d) token-major -> o: (n, b, h·d). Query blocks of B against their bands of
        L = w + B − 1 keys, all blocks in one call of torch's fused attention kernel; no copies of q, k or v.

        The δ residue classes of the dilation and the b·h heads are one batch dim H' = δ·b·h of strided views
        (class r, head j, index u at token u·δ + r), in which the window is contiguous: the bands of every
        block are overlapping views (unfold, step B) of the keys. Every block whose band starts at or after
        position 0 shares one (B, L) additive band bias (0 or −∞), precomputed; the first ⌈(w − 1)/B⌉ blocks,
        whose bands reach before 0, take their own, over a small copy of their keys behind w − 1 zero rows.
        """
        n, b, inner = q.shape
        h, d = self.n_heads, self.head_dim
        w, δ, B = self.window, self.dilation, self.block_size
        length = padded(n, δ * B)
        m, H = length // δ, δ * b * h  # tokens per residue class; classes × heads
        groups, L = m // B, w + B - 1
        first = min(-(-(w - 1) // B), groups)  # blocks whose band reaches before position 0

        def classes(t: torch.Tensor) -> torch.Tensor:  # (length, b, h·d) -> (H', m, d), a view
            return t.view(m, δ, b * h, d).permute(1, 2, 0, 3).reshape(H, m, d)

        def bands(t: torch.Tensor) -> torch.Tensor:  # (H', rows, d) -> (H', G, L, d): overlapping views, step B
            return t.unfold(1, L, B).transpose(-1, -2)

        q, k, v = (F.pad(t, (0, 0, 0, 0, 0, length - n)) if length > n else t for t in (q, k, v))
        qc, kc, vc = classes(q), classes(k), classes(v)
        queries = qc.unflatten(1, (groups, B))  # (H', G, B, d)
        # (first + 1, B, L): 0 or −∞; block first's row serves every later block, so no row past it is built (nor cached per n)
        bias = static_tensor(band_bias, min(first + 1, groups), w, B, device=q.device, dtype=q.dtype)
        o = q.new_empty(length, b, inner)
        oc = classes(o).unflatten(1, (groups, B))  # (H', G, B, d), a view of o
        if first:  # the first blocks' keys, behind w − 1 zero rows
            kp, vp = (torch.cat([t.new_zeros(H, w - 1, d), t[:, :first * B]], 1) for t in (kc, vc))
            oc[:, :first].copy_(F.scaled_dot_product_attention(queries[:, :first], bands(kp), bands(vp),
                                                               attn_mask=bias[None, :first], scale=scale))
        if first < groups:  # every later block: bands of the keys themselves, one shared (B, L) bias
            start = first * B - (w - 1)
            oc[:, first:].copy_(F.scaled_dot_product_attention(queries[:, first:], bands(kc[:, start:]), bands(vc[:, start:]),
                                                               attn_mask=bias[first][None, None], scale=scale))
        return o[:n]

    # decode: the last δ·(w − 1) keys and values
    @property
    def memory(self) -> int:
        return self.dilation * (self.window - 1)

    def init_state(self, batch: int) -> dict[str, torch.Tensor]:
        empty = self.v_proj.weight.new_zeros(batch, self.n_heads, 0, self.head_dim)
        return {"key": empty, "value": empty.clone()}

    def cache(self, q, k, v) -> dict[str, torch.Tensor]:
        keep = min(self.memory, k.shape[2])
        return {"key": k[:, :, k.shape[2] - keep:].clone(), "value": v[:, :, v.shape[2] - keep:].clone()}

    def step(self, x_t: torch.Tensor, state: dict[str, torch.Tensor]):
        q, k_t, v_t = self.project(x_t)  # (b, h, 1, d)
        k = torch.cat([state["key"], k_t], dim=2)  # (b, h, m + 1, d): positions t − m … t
        v = torch.cat([state["value"], v_t], dim=2)
        first = (k.shape[2] - 1) % self.dilation  # keys t − δ·u
        s = q @ k[:, :, first::self.dilation].transpose(-2, -1)  # (b, h, 1, ≤ w)
        o = torch.softmax(s, dim=-1) @ v[:, :, first::self.dilation]
        keep = min(self.memory, k.shape[2])
        return self.output(o), {"key": k[:, :, k.shape[2] - keep:].clone(), "value": v[:, :, v.shape[2] - keep:].clone()}


# ----------------------------------------------------------------------------- cost model


def sliding_window_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, h, d = config["batch"], config["seq_len"], config["n_heads"], config["head_dim"]
    w, δ, B = config["window"], config["dilation"], config["block_size"]
    memory = δ * (w - 1)
    state_bytes = 2 * b * h * min(memory, n) * d * dtype_bytes(config)
    if mode == "decode":

        def per_token(context: int) -> float:
            return decode_step_flops(config, min(w, (context - 1) // δ + 1))

        return Cost(mean_over_decode(config, per_token), state_bytes)
    t = Tally()
    projections(t, config, b * n, scale_q=config["impl"] != "fused")
    if config["impl"] == "masked":
        masked_cost(t, config, n)
    elif config["impl"] == "fused":
        length = padded(n, δ * B)
        pairs = b * h * length * (w + B - 1)  # every (query, band slot) pair of every block is computed
        bands = b * h * (length // B) * (w + B - 1) * d  # elements of one band tensor (keys or values)
        # torch's flash kernel: QKᵀ (2d), softmax (5), PV (2d) per pair; its backward dV, dP, softmax', dQ, dK;
        # the backward of unfold sums the overlapping bands' gradients (keys and values)
        t.add(pairs * (4.0 * d + SOFTMAX_FLOPS), pairs * (8.0 * d + SOFTMAX_BACKWARD_FLOPS) + 2 * bands)
        if 0 < -(-(w - 1) // B) < length // (δ * B):  # q, k and v each used by two calls (first blocks, the rest): grads summed
            t.add(0, 3 * b * h * length * d)
    else:
        length = padded(n, δ * B)
        attend_cost(t, config, length // B, B, [("group", w + B - 1)], length)
    return Cost(t.total(mode), state_bytes)


def _validate(config: dict[str, Any]) -> None:
    if config["window"] > 1 << 16:
        raise ConfigError(f"window={config['window']} is too large; at most 65536")


@register(
    MechanismSpec(
        name="sliding_window",
        complexity={"prefill": "O(N·w·d)", "train": "O(N·w·d)", "decode": "O(w·d) per token", "state": "O(w·d): last w keys"},
        family="sparse",
        summary="Causal local attention over the last `window` keys (dilated by `dilation`): key bands per query block",
        paper=Paper("Longformer: The Long-Document Transformer", 2020, "2004.05150"),
        causal=True,
        defaults={"n_heads": 2, "head_dim": None, "impl": "fused", "window": 64, "dilation": 1, "block_size": 64},
        choices={"impl": IMPLS},
        cost=sliding_window_cost,
        validate=_validate,
        pattern=lambda config: pattern_lists("sliding_window", config),
        tests=TestHooks(overrides={"window": 5, "dilation": 2, "block_size": 4}),
        claims=(
            *sparse_claims(("blocked", "fused"), decode_state=0.0, decode_flops=0.0),
            *(Claim("flops", "window", 1.0, "forward", {"impl": impl}) for impl in ("blocked", "fused")),
        ),
    )
)
def build_sliding_window(config: dict[str, Any]) -> SlidingWindowAttention:
    return SlidingWindowAttention(config)
