"""Zamba: a Mamba backbone with one shared attention block applied every few layers (Glorioso et al. 2024).

For input x: (b, n, d), L Mamba layers and a shared block applied after every k-th (k = shared_every):

    h ← h + Mamba_ℓ(RMSNorm(h))                                  ℓ = 1 … L   (own weights each)
    after layer ℓ = k, 2k, …:
        u = [h ; x]                                              (b, n, 2d): the residual stream and
                                                                  the original input, concatenated
        u ← u + Attn(RMSNorm(u)),   u ← u + FFN(RMSNorm(u))      the shared block, width 2d: ONE set of
                                                                  weights for every application
        h ← h + u W_j                                            W_j: (2d × d), the j-th application's own

So the attention parameters are paid once, whatever L, while each application keeps its own KV
cache (its inputs differ at each depth): ⌊L/k⌋ caches of 2·b·g·n·(2d/h) numbers each; the Mamba
layers keep their constant conv windows and states. FLOPs: each application pays the attention's
n² term at width 2d; the Mamba layers are linear in n.

Zamba1 itself has 76 Mamba layers with the shared block every 6; the defaults here are 6 and 3.
The FFN of the shared block has hidden width d_ff.

Glossary: b batch, n seq_len, d d_model, L n_layers, k shared_every, h n_heads, g n_kv_heads,
W_j the j-th application's output projection.
"""

from __future__ import annotations

from typing import Any

from effprof.config import declare_key
from effprof.mechanisms.hybrid import plan as layout
from effprof.mechanisms.hybrid.cost import stack_cost
from effprof.mechanisms.hybrid.layers import LETTERS, layer
from effprof.mechanisms.hybrid.stack import Stack, build_stack
from effprof.registry import Claim, Cost, MechanismSpec, Paper, TestHooks, register

declare_key("shared_every", int, "Mamba layers between applications of a shared attention block (zamba)")


def zamba_plan(config: dict[str, Any]) -> layout.StackPlan:
    d = config["d_model"]
    mamba = layer(config, "mamba", LETTERS["M"][1])
    wide = {**config, "d_model": 2 * d}  # the shared block reads [h ; x]
    shared = layout.SharedBlocks(
        layout.residual_blocks([layer(wide, "softmax_attention", {"impl": "sdpa"}), layer(wide, "dense_ffn", {"top_k": 1})]),
        2 * d,
    )
    blocks: list[layout.Block] = []
    for i in range(config["n_layers"]):
        blocks.append(layout.Residual(mamba))
        if (i + 1) % config["shared_every"] == 0:
            blocks.append(layout.Shared(shared, application=(i + 1) // config["shared_every"] - 1))
    return layout.StackPlan(tuple(blocks), config)


def zamba_cost(config: dict[str, Any], mode: str) -> Cost:
    return stack_cost(zamba_plan(config), mode)


@register(
    MechanismSpec(
        name="zamba",
        family="hybrid",
        summary="Zamba: Mamba backbone with one shared (weight-tied) attention+FFN block applied every shared_every layers",
        paper=Paper("Zamba: A Compact 7B SSM Hybrid Model", 2024, "2405.16712"),
        causal=True,
        defaults={"n_layers": 6, "shared_every": 3, "n_heads": 2, "n_kv_heads": None, "d_state": 8, "expand": 2,
                  "d_conv": 4, "chunk_size": 64, "d_ff": 256, "activation": "swiglu"},
        cost=zamba_cost,
        forms=lambda config: layout.forms(zamba_plan(config)),
        kernels=("selective_scan",),  # mamba layers at impl auto, where it resolves to chunked_c
        validate=zamba_plan,  # resolves every sub-layer's config: a bad value raises ConfigError
        complexity={"prefill": "O(L/k·N²d + L·N·d²)", "train": "O(L/k·N²d + L·N·d²)",
                    "decode": "O(L/k·N·d + L·d²) per token", "state": "O(L/k·N·d) KV + O(L·d·N_state)"},
        tests=TestHooks(overrides={"chunk_size": 5, "d_state": 4, "d_ff": 16, "n_layers": 4, "shared_every": 2}),
        claims=(
            Claim("flops", "seq_len", 2.0, "forward"),
            Claim("flops", "seq_len", 2.0, "train"),
            Claim("flops", "seq_len", 1.0, "decode"),
            Claim("state_bytes", "seq_len", 1.0, "decode"),
        ),
    )
)
def build_zamba(config: dict[str, Any]) -> Stack:
    return build_stack(zamba_plan(config))
