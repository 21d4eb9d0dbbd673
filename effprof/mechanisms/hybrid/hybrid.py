"""hybrid: a stack you describe on the command line, `pattern` letters (or names) and `n_layers` blocks.

    h₀ = x,   h_ℓ = h_{ℓ-1} + f_ℓ(RMSNorm(h_{ℓ-1})),   y = h_L              (stack.py)
    f_ℓ = the layer of pattern[ℓ mod len(pattern)]

Letters (layers.py): A softmax_attention (sdpa), W sliding_window, M mamba (auto: the compiled scan where it runs), S mamba2,
L linear_attention, E moe_topk (MoE FFN), F dense_ffn (width top_k·d_ff: the active width of E).
Each letter is one residual block: a transformer layer is "AF", a Jamba layer "ME" or "AF".
The pattern is repeated and cut to n_layers blocks ("MMMA" with n_layers 8: MMMAMMMA; n_layers
12: MMMAMMMAMMMA; n_layers 2: MM); n_layers unset: one block per letter. Comma-separated names
of causal mechanisms are accepted too: "mamba,mamba,softmax_attention" (letters may be mixed in).
A bad letter is rejected naming it and listing the accepted ones.

Shared keys: every layer that accepts a key (n_heads, d_state, expand, chunk_size, window,
n_experts, top_k, d_ff, ...) gets the stack's value of it; the rest take their own defaults.

Cost: Σ of the layers' own cost models + L RMSNorms and residual adds (cost.py). With an A in
the pattern, forward FLOPs ≈ L_A·2·b·h·n²·d_h + (linear in n): the n² term of the attention
layers leads asymptotically; decode state = L_A KV caches (O(n)) + the constant states of the others.

Glossary: b batch, n seq_len, d d_model, L n_layers (blocks), L_A attention blocks, h n_heads,
d_h head_dim.
"""

from __future__ import annotations

from typing import Any

from effprof.mechanisms.hybrid import plan as layout
from effprof.mechanisms.hybrid.cost import stack_cost
from effprof.mechanisms.hybrid.layers import Layer, layer, parse_pattern
from effprof.mechanisms.hybrid.stack import Stack, build_stack
from effprof.registry import Claim, Cost, MechanismSpec, Paper, TestHooks, register

DEFAULT_PATTERN = "MEAF"

# keys any letter may use, with the values the stack passes to every layer that accepts them
LAYER_DEFAULTS: dict[str, Any] = {
    "n_heads": 2, "n_kv_heads": None,  # attention (A, W, L); Mamba-2 heads (S)
    "d_state": 8, "expand": 2, "d_conv": 4, "chunk_size": 64,  # M, S (chunk_size also L)
    "window": 64, "dilation": 1, "block_size": 32,  # W
    "feature_map": "elu1", "n_features": 64,  # L
    "n_experts": 8, "top_k": 2, "d_ff": 256, "capacity_factor": 0.0, "activation": "swiglu",  # E, F
    "n_shared_experts": 0,
}


def stack_plan(config: dict[str, Any]) -> layout.StackPlan:
    resolved: dict[tuple[str, tuple], Layer] = {}  # one resolved config per distinct layer
    layers = []
    for name, fixed in parse_pattern(config["pattern"], config["n_layers"]):
        key = (name, tuple(sorted(fixed.items())))
        if key not in resolved:
            resolved[key] = layer(config, name, fixed)
        layers.append(resolved[key])
    return layout.StackPlan(layout.residual_blocks(layers), config)


def hybrid_cost(config: dict[str, Any], mode: str) -> Cost:
    return stack_cost(stack_plan(config), mode)


def _validate(config: dict[str, Any]) -> None:
    stack_plan(config)  # bad letters, unknown names and bad sub-layer configs raise ConfigError


DEFAULT = {"pattern": DEFAULT_PATTERN}


@register(
    MechanismSpec(
        name="hybrid",
        family="hybrid",
        summary="Pre-norm residual stack from a pattern of layer letters/names (A attention, M mamba, E MoE, F FFN, ...)",
        paper=Paper("An Empirical Study of Mamba-based Language Models", 2024, "2406.07887"),
        causal=True,
        defaults={"pattern": DEFAULT_PATTERN, "n_layers": None, **LAYER_DEFAULTS},
        cost=hybrid_cost,
        forms=lambda config: layout.forms(stack_plan(config)),
        kernels=("selective_scan",),  # mamba layers at impl auto, where it resolves to chunked_c
        validate=_validate,
        complexity={"prefill": "O(L_A·N²d + L·N·d²)", "train": "O(L_A·N²d + L·N·d²)",
                    "decode": "O(L_A·N·d + L·d²) per token", "state": "O(L_A·N·d) KV + O(1) per other layer"},
        tests=TestHooks(overrides={"chunk_size": 5, "d_state": 4, "d_ff": 16, "window": 5, "block_size": 4}),
        claims=(
            # the default pattern holds one attention block: its n² term leads
            Claim("flops", "seq_len", 2.0, "forward", DEFAULT),
            Claim("flops", "seq_len", 2.0, "train", DEFAULT),
            Claim("flops", "seq_len", 1.0, "decode", DEFAULT),
            Claim("state_bytes", "seq_len", 1.0, "decode", DEFAULT),
            Claim("state_bytes", "seq_len", 0.0, "decode", {"pattern": "MEMF"}),
            Claim("flops", "seq_len", 1.0, "forward", {"pattern": "MEMF"}),
            Claim("flops", "seq_len", 0.0, "decode", {"pattern": "MEMF"}),
        ),
    )
)
def build_hybrid(config: dict[str, Any]) -> Stack:
    return build_stack(stack_plan(config))
