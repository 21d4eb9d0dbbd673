"""Hymba: attention heads and SSM heads in parallel in every layer, with learnable meta tokens (Dong et al. 2024).

For input x: (b, n, d) and m = n_meta learnable tokens R: (m, d):

    X̃ = [R ; x]                                                  (b, m + n, d): meta tokens first
    per layer ℓ = 0 … L−1:
        u = RMSNorm(h)
        h ← h + ½(β₁ ⊙ RMSNorm(Attn_ℓ(u)) + β₂ ⊙ RMSNorm(SSM_ℓ(u)))   the hybrid-head fusion: the mean of
                                                                  the normalised outputs, learnable scales β
        h ← h + FFN_ℓ(RMSNorm(h))
    y = h[:, m:]                                                  the real tokens' outputs

Attn_ℓ is full causal attention in the first, middle and last layers (ℓ ∈ {0, ⌊L/2⌋, L−1}) and
sliding-window attention elsewhere; as in the paper the meta tokens stay visible to every query of
a windowed layer: that is Longformer's causal pattern with the m meta tokens as its global tokens,

    P_i = { j ≤ i : i − j < w }  ∪  { j < m }

SSM_ℓ is a Mamba block (the SSM heads), FFN_ℓ a dense FFN of hidden width d_ff. The paper shares
one input projection between the two branches; here each is the registered mechanism with its own.

Causality: the meta tokens precede every real token, so output t depends on R and x_{≤t} only.
Decode: the meta tokens are part of the state. init_state is the state after the m meta tokens
(their prefill), so init_state + step over x equals forward, and after a prefill of n tokens
the state holds, per layer: a full layer's KV cache of m + n tokens, a windowed layer's last
w − 1 keys and the m meta keys, and the Mamba conv window and h:

    state = 3·2·b·g·(m + n)·d_h + (L − 3)·2·b·g·(w − 1 + m)·d_h + L·b·D_in·(K − 1 + N)

so it grows with n only through the three full-attention layers; so do the FLOPs' n² terms.

Glossary: b batch, n seq_len, d d_model, m n_meta, L n_layers, w window, h n_heads, g n_kv_heads,
d_h head_dim, D_in = expand·d, N d_state, K d_conv, f d_ff.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from effprof.config import declare_key
from effprof.mechanisms.hybrid import plan as layout
from effprof.mechanisms.hybrid.cost import stack_cost
from effprof.mechanisms.hybrid.layers import LETTERS, layer
from effprof.mechanisms.hybrid.stack import Stack, build_blocks
from effprof.registry import Claim, Cost, MechanismSpec, Paper, TestHooks, register

declare_key("n_meta", int, "learnable meta tokens prepended to every sequence (hymba)", positive=False)


def full_attention_layers(n_layers: int) -> set[int]:
    """The first, middle and last layers attend to everything; the others use a sliding window."""
    return {0, n_layers // 2, n_layers - 1}


def hymba_plan(config: dict[str, Any]) -> layout.StackPlan:
    m = config["n_meta"]
    inner = {**config, "seq_len": config["seq_len"] + m}  # every layer sees the meta tokens too
    full = layer(inner, "softmax_attention", {"impl": "sdpa"})
    local = layer(inner, "longformer", {"n_global": m})  # the window plus the meta tokens
    ssm = layer(inner, "mamba", LETTERS["M"][1])
    ffn = layer(inner, "dense_ffn", {"top_k": 1})
    blocks: list[layout.Block] = []
    full_at = full_attention_layers(config["n_layers"])
    for i in range(config["n_layers"]):
        blocks += [layout.Parallel(full if i in full_at else local, ssm), layout.Residual(ffn)]
    return layout.StackPlan(tuple(blocks), config, n_meta=m)


def hymba_cost(config: dict[str, Any], mode: str) -> Cost:
    return stack_cost(hymba_plan(config), mode)


class Hymba(Stack):
    def __init__(self, block_modules: list[nn.Module], n_meta: int, d_model: int):
        super().__init__(block_modules)
        self.meta = nn.Parameter(torch.randn(n_meta, d_model))  # R: (m, d), at the inputs' scale

    def with_meta(self, x: torch.Tensor) -> torch.Tensor:
        """[R ; x]: (b, m + n, d)"""
        return torch.cat([self.meta.expand(x.shape[0], -1, -1), x], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.with_meta(x))[:, self.meta.shape[0]:]

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        y, state = super().prefill(self.with_meta(x))
        return y[:, self.meta.shape[0]:], state

    def init_state(self, batch: int) -> tuple:
        """The state after the meta tokens alone."""
        if self.meta.shape[0] == 0:
            return super().init_state(batch)
        with torch.no_grad():
            return super().prefill(self.meta.expand(batch, -1, -1))[1]


@register(
    MechanismSpec(
        name="hymba",
        family="hybrid",
        summary="Hymba: parallel attention + Mamba heads per layer (normalised mean), sliding windows, meta tokens",
        paper=Paper("Hymba: A Hybrid-head Architecture for Small Language Models", 2024, "2411.13676"),
        causal=True,
        defaults={"n_layers": 6, "n_meta": 16, "window": 64, "block_size": 32, "n_heads": 2, "n_kv_heads": None,
                  "d_state": 8, "expand": 2, "d_conv": 4, "chunk_size": 64, "d_ff": 256, "activation": "swiglu"},
        cost=hymba_cost,
        forms=lambda config: layout.forms(hymba_plan(config)),
        kernels=("selective_scan",),  # mamba layers at impl auto, where it resolves to chunked_c
        validate=hymba_plan,  # resolves every sub-layer's config: a bad value raises ConfigError
        complexity={"prefill": "O(3·N²d + L·N·(w + m)·d + L·N·d²)", "train": "O(3·N²d + L·N·(w + m)·d + L·N·d²)",
                    "decode": "O(3·N·d + L·(w + m)·d + L·d²) per token", "state": "O(3·N·d) KV + O(L·(w + m)·d)"},
        tests=TestHooks(overrides={"chunk_size": 5, "d_state": 4, "d_ff": 16, "n_layers": 4, "n_meta": 3, "window": 5,
                                   "block_size": 4}),
        claims=(
            Claim("flops", "seq_len", 2.0, "forward"),
            Claim("flops", "seq_len", 2.0, "train"),
            Claim("flops", "seq_len", 1.0, "decode"),
            Claim("state_bytes", "seq_len", 1.0, "decode"),
        ),
    )
)
def build_hymba(config: dict[str, Any]) -> Hymba:
    plan = hymba_plan(config)
    return Hymba(build_blocks(plan.blocks, config["d_model"]), config["n_meta"], config["d_model"])
