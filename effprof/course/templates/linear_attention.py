"""Week 16, project 1 (week 7): causal linear attention from scratch.

    effprof course 7 --template > my_linear.py      # this file
    effprof course 7 --check my_linear.py:build     # checked against effprof's linear_attention

Equations (the roadmap's, week 7), per head, with φ(x) = elu(x) + 1:

    o_t = φ(q_t) S_t / φ(q_t) z_t
    S_t = S_{t-1} + φ(k_t)ᵀ v_t          S: (D × d)     D = d for elu + 1
    z_t = z_{t-1} + φ(k_t)ᵀ              z: (D,)
    the denominator gets + 1e-6, as effprof's does:  o_t = φ(q_t) S_t / (φ(q_t) z_t + 1e-6)

Glossary: b batch, n seq_len, h n_heads, d head_dim, d_model = model width.

Weights: build(config, weights) receives effprof's reference config and its state_dict() at that config:
    q_proj.weight, k_proj.weight, v_proj.weight: (h·d, d_model)    o_proj.weight: (d_model, h·d)
so q = x W_qᵀ (nn.Linear without bias). The module below loads them; you write the maths.

The checker wants: forward(x) (b, n, d_model) -> (b, n, d_model), causal; init_state(b); prefill(x) -> (y, state);
step(x_t, state) -> (y_t, state) with x_t (b, 1, d_model); the state is {"S": (b, h, D, d), "z": (b, h, D)},
the same size whatever n; work linear in n (no n×n matrix).
"""

import torch
from torch import nn


class MyLinearAttention(nn.Module):
    def __init__(self, config: dict, weights: dict):
        super().__init__()
        self.n_heads, self.head_dim = config["n_heads"], config["head_dim"]
        inner = self.n_heads * self.head_dim
        self.q_proj = nn.Linear(config["d_model"], inner, bias=False)
        self.k_proj = nn.Linear(config["d_model"], inner, bias=False)
        self.v_proj = nn.Linear(config["d_model"], inner, bias=False)
        self.o_proj = nn.Linear(inner, config["d_model"], bias=False)
        self.load_state_dict(weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, n, d_model) -> (b, n, d_model)"""
        raise NotImplementedError("TODO: q, k, v = projections split into heads (b, h, n, d); φ; running sums; o_proj")

    def init_state(self, batch: int) -> dict:
        raise NotImplementedError("TODO: S = zeros (b, h, D, d), z = zeros (b, h, D)")

    def prefill(self, x: torch.Tensor) -> tuple:
        raise NotImplementedError("TODO: (forward(x), the state after all n tokens)")

    def step(self, x_t: torch.Tensor, state: dict) -> tuple:
        raise NotImplementedError("TODO: update S and z with token t, return (o_t projected (b, 1, d_model), new state)")


def build(config: dict, weights: dict) -> nn.Module:
    return MyLinearAttention(config, weights)
