"""Jamba: Mamba layers with one attention layer in eight and MoE in every other FFN (Lieber et al. 2024).

Each Jamba layer ℓ = 0 … L−1 is a mixer block and an FFN block (stack.py):

    h ← h + Mixer_ℓ(RMSNorm(h)),   Mixer_ℓ = Attention if ℓ mod 8 = 4 else Mamba    (a:m = 1:7)
    h ← h + FFN_ℓ(RMSNorm(h)),     FFN_ℓ = MoE (top-k of e experts) if ℓ mod 2 = 1 else dense

as in the released model (attention offset 4 and period 8, expert offset 1 and period 2): the
layers of one 8-layer Jamba block read, as hybrid letters, MF ME MF ME AF ME MF ME. Each expert
and the dense FFN have hidden width d_ff (the MoE runs top_k of them per token).

KV cache: only the attention layers keep one, so at L = 8 the KV part is 1/8 of an all-attention
stack of the same width (the paper's 8× smaller cache), plus the Mamba layers' states (conv
window and h), constant in n:

    state = (L/8)·2·b·g·n·d_h  +  (7L/8)·b·D_in·(K − 1 + N)          (in elements)

FLOPs: the attention layers' 2·b·h·n²·d_h leads asymptotically; the Mamba, FFN and MoE layers
are linear in n.

Glossary: b batch, n seq_len, d d_model, L n_layers (Jamba layers: 2L blocks), h n_heads,
g n_kv_heads, d_h head_dim, D_in = expand·d, N d_state, K d_conv, e n_experts, k top_k, f d_ff.
"""

from __future__ import annotations

from typing import Any

from effprof.mechanisms.hybrid import plan as layout
from effprof.mechanisms.hybrid.cost import stack_cost
from effprof.mechanisms.hybrid.layers import LETTERS, layer
from effprof.mechanisms.hybrid.stack import Stack, build_stack
from effprof.registry import Claim, Cost, MechanismSpec, Paper, TestHooks, register

ATTENTION_PERIOD, ATTENTION_OFFSET = 8, 4
EXPERT_PERIOD, EXPERT_OFFSET = 2, 1


def jamba_pattern(n_layers: int) -> str:
    """The stack's blocks as hybrid letters: mixer (A or M) then FFN (E or F) per Jamba layer."""
    letters = []
    for i in range(n_layers):
        letters.append("A" if i % ATTENTION_PERIOD == ATTENTION_OFFSET else "M")
        letters.append("E" if i % EXPERT_PERIOD == EXPERT_OFFSET else "F")
    return "".join(letters)


def jamba_plan(config: dict[str, Any]) -> layout.StackPlan:
    fixed = {"F": {"top_k": 1}}  # the dense FFN as wide as one expert: d_ff
    layers = {}
    for letter in "AMEF":
        name, letter_fixed = LETTERS[letter]
        layers[letter] = layer(config, name, {**letter_fixed, **fixed.get(letter, {})})
    blocks = layout.residual_blocks([layers[letter] for letter in jamba_pattern(config["n_layers"])])
    return layout.StackPlan(blocks, config)


def jamba_cost(config: dict[str, Any], mode: str) -> Cost:
    return stack_cost(jamba_plan(config), mode)


JAMBA_ATTENTION = ("quadratic above n ≈ 16,000 at the defaults (1 attention layer in 8), linear below: the attention "
                   "layer's n² term passes the Mamba and MoE layers' linear ones there")


@register(
    MechanismSpec(
        name="jamba",
        family="hybrid",
        summary="Jamba: Mamba layers with attention in 1 of 8 and MoE replacing every other FFN",
        paper=Paper("Jamba: A Hybrid Transformer-Mamba Language Model", 2024, "2403.19887"),
        causal=True,
        defaults={"n_layers": 8, "n_heads": 2, "n_kv_heads": None, "d_state": 8, "expand": 2, "d_conv": 4,
                  "chunk_size": 64, "n_experts": 16, "top_k": 2, "d_ff": 256, "capacity_factor": 0.0,
                  "activation": "swiglu", "n_shared_experts": 0},
        cost=jamba_cost,
        forms=lambda config: layout.forms(jamba_plan(config)),
        kernels=("selective_scan",),  # mamba layers at impl auto, where it resolves to chunked_c
        validate=jamba_plan,  # resolves every sub-layer's config: a bad value raises ConfigError
        complexity={"prefill": "O(L/8·N²d + L·N·d²)", "train": "O(L/8·N²d + L·N·d²)",
                    "decode": "O(L/8·N·d + L·d²) per token", "state": "O(L/8·N·d) KV + O(L·d·N_state)"},
        tests=TestHooks(overrides={"chunk_size": 5, "d_state": 4, "d_ff": 16, "n_experts": 4}),
        claims=(
            # counted at the defaults (n = 1K..16K): forward 4.2e6·n + 261·n², decode 4.2e6 + 522·n per token
            Claim("flops", "seq_len", 2.0, "forward", note=JAMBA_ATTENTION),
            Claim("flops", "seq_len", 2.0, "train", note=JAMBA_ATTENTION),
            Claim("flops", "seq_len", 1.0, "decode",
                  note="linear above n ≈ 8,000 at the defaults, constant below: the attention layer reads n cached keys"),
            Claim("state_bytes", "seq_len", 1.0, "decode"),
        ),
    )
)
def build_jamba(config: dict[str, Any]) -> Stack:
    return build_stack(jamba_plan(config))
