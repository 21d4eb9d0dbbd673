"""The dense FFN baseline: the FFN an MoE layer replaces, as wide as the experts a token activates.

    Y = FFN(X) = (SiLU(X W_gate) ⊙ X W_up) W_out    (SwiGLU; GELU: GELU(X W_in) W_out)
    hidden width = top_k · d_ff                    (the active width of a top-k MoE with experts of d_ff)

Glossary: T = batch·seq_len tokens, d d_model, f d_ff, k top_k.

FLOPs ≈ T·(6·d·k·f) (SwiGLU), the same as moe_topk's experts at equal top_k and d_ff without
its router, while moe_topk holds e/k times the FFN parameters. It acts on each token alone:
causal, with an empty decode state.
"""

from __future__ import annotations

from typing import Any

import torch

from effprof.cost_model import Tally, mean_over_decode
from effprof.mechanisms.moe.cost import ffn_cost
from effprof.mechanisms.moe.experts import ACTIVATIONS, FeedForward
from effprof.mechanisms.moe.per_token import PerTokenMechanism
from effprof.registry import Claim, Cost, MechanismSpec, Paper, TestHooks, register


class DenseFFN(PerTokenMechanism):
    def __init__(self, d_model: int, width: int, activation: str):
        super().__init__()
        self.ffn = FeedForward(d_model, width, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return self.ffn(x.reshape(b * n, d)).view(b, n, d)  # (b, n, d)


def dense_ffn_cost(config: dict[str, Any], mode: str) -> Cost:
    def tally(tokens: int) -> Tally:
        t = Tally()
        ffn_cost(t, tokens, config["d_model"], config["top_k"] * config["d_ff"], config["activation"])
        return t

    if mode == "decode":
        per_step = tally(config["batch"]).forward
        return Cost(mean_over_decode(config, lambda context: per_step), 0.0)
    return Cost(tally(config["batch"] * config["seq_len"]).total(mode), 0.0)


@register(
    MechanismSpec(
        name="dense_ffn",
        complexity={"prefill": "O(N·d·k·d_ff)", "train": "O(N·d·k·d_ff)", "decode": "O(d·k·d_ff) per token", "state": "O(1)"},
        family="moe",
        summary="Dense FFN baseline with hidden width top_k·d_ff: the active width of a top-k MoE, no router",
        paper=Paper("GLU Variants Improve Transformer", 2020, "2002.05202"),
        causal=True,
        defaults={"top_k": 2, "d_ff": 256, "activation": "swiglu"},
        choices={"activation": ACTIVATIONS},
        cost=dense_ffn_cost,
        tests=TestHooks(overrides={"d_ff": 16}),
        claims=(
            Claim("flops", "seq_len", 1.0, "forward"),
            Claim("flops", "seq_len", 1.0, "train"),
            Claim("flops", "seq_len", 0.0, "decode"),
            Claim("flops", "top_k", 1.0, "forward"),
            Claim("flops", "d_ff", 1.0, "forward"),
            Claim("params", "d_ff", 1.0, "forward"),
        ),
    )
)
def build_dense_ffn(config: dict[str, Any]) -> DenseFFN:
    return DenseFFN(config["d_model"], config["top_k"] * config["d_ff"], config["activation"])
