"""Week 16, project 3 (week 10): an MoE router, token-choice top-k with SwiGLU experts.

    effprof course 10 --template > my_moe.py
    effprof course 10 --check my_moe.py:build       # checked against effprof's moe_topk

Equations (week 10), for the T = b·n tokens X (T × d):

    P = softmax(X W_g + b_g)                     router probabilities (T × e)
    (G, I) = Top-k(P);  G ← G / Σ_k G  (k > 1)   gates and chosen experts (T × k)
    Y = Σ_k G_k · E_{I_k}(X)                     E_i(x) = (SiLU(x W_gate,i) ⊙ x W_up,i) W_out,i

Glossary: b batch, n seq_len, d d_model, e n_experts, k top_k, f d_ff.

Weights: build(config, weights) receives the reference config and its state_dict():
    router.gate.weight: (e, d), router.gate.bias: (e,)        (so logits = X W_gᵀ + b_g)
    experts.w_in: (e, d, 2f)  — [W_gate | W_up] side by side: x @ w_in[i] = [x W_gate,i, x W_up,i]
    experts.w_out: (e, f, d)

The checker wants: forward(x) (b, n, d) -> (b, n, d); a token's output depends on that token only (causal);
init_state(b) -> () and prefill/step that pass the empty state on; FLOPs linear in n, and only the k chosen experts
run for a token (do not run every expert on every token and mask).
"""

import torch
from torch import nn


class MyMoE(nn.Module):
    def __init__(self, config: dict, weights: dict):
        super().__init__()
        self.top_k, self.n_experts = config["top_k"], config["n_experts"]
        d, e, f = config["d_model"], config["n_experts"], config["d_ff"]
        self.router = nn.Module()
        self.router.gate = nn.Linear(d, e)
        self.experts = nn.Module()
        self.experts.w_in = nn.Parameter(torch.empty(e, d, 2 * f))
        self.experts.w_out = nn.Parameter(torch.empty(e, f, d))
        self.load_state_dict(weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, n, d) -> (b, n, d)"""
        raise NotImplementedError("TODO: P = softmax(router(X)); top-k; renormalise; for each expert its tokens; Σ G·E(x)")

    def init_state(self, batch: int) -> tuple:
        return ()

    def prefill(self, x: torch.Tensor) -> tuple:
        return self(x), ()

    def step(self, x_t: torch.Tensor, state: tuple) -> tuple:
        return self(x_t), state


def build(config: dict, weights: dict) -> nn.Module:
    return MyMoE(config, weights)
