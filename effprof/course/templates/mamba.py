"""Week 16, project 4 (week 8): a Mamba-style selective SSM block.

    effprof course 8 --template > my_mamba.py
    effprof course 8 --check my_mamba.py:build      # checked against effprof's mamba

Equations (week 8, data-dependent parameters), for input u: (b, n, d):

    [x, z] = u W_inᵀ                                    in-projection to 2·D_in, split in halves
    x      = SiLU(causal_conv1d(x))                     depthwise, width K: x̃_t = b + Σ_{j<K} w_j ⊙ x_{t−K+1+j}
    [δ, B, C] = x W_xᵀ                                  per token: δ (R), B (N), C (N)
    Δ      = softplus(δ W_Δᵀ + b_Δ)                     (b, n, D_in)
    A      = −exp(A_log)                                (D_in, N)
    Ā_t = exp(Δ_t A),  B̄_t x_t = (Δ_t x_t) B_t          zero-order hold, B̄ simplified as in the paper
    h_t = Ā_t ⊙ h_{t−1} + B̄_t x_t,   y_t = h_t C_t + D ⊙ x_t
    out = (y ⊙ SiLU(z)) W_outᵀ

Glossary: b batch, n seq_len, d d_model, D_in = expand·d, N d_state, R = ⌈d/16⌉, K d_conv.

Weights: build(config, weights) receives the reference config and its state_dict():
    in_proj.weight (2·D_in, d)  conv.conv.weight (D_in, 1, K)  conv.conv.bias (D_in,)  x_proj.weight (R + 2N, D_in)
    dt_proj.weight (D_in, R)  dt_proj.bias (D_in,)  A_log (D_in, N)  D (D_in,)  out_proj.weight (d, D_in)

The checker wants: forward(u) (b, n, d) -> (b, n, d), causal; init_state(b); prefill(u) -> (y, state);
step(u_t, state) -> (y_t, state). The state is {"conv": (b, D_in, K−1) the last K−1 inputs of the conv (zeros
before the start), "ssm": (b, D_in, N) h}: the same size whatever n; work linear in n.
"""

import math

import torch
from torch import nn


class MyMamba(nn.Module):
    def __init__(self, config: dict, weights: dict):
        super().__init__()
        d, N, K = config["d_model"], config["d_state"], config["d_conv"]
        inner, rank = config["expand"] * d, math.ceil(d / 16)
        self.d_state, self.rank, self.width = N, rank, K
        self.in_proj = nn.Linear(d, 2 * inner, bias=False)
        self.conv = nn.Module()
        self.conv.conv = nn.Conv1d(inner, inner, K, groups=inner)
        self.x_proj = nn.Linear(inner, rank + 2 * N, bias=False)
        self.dt_proj = nn.Linear(rank, inner)
        self.A_log = nn.Parameter(torch.empty(inner, N))
        self.D = nn.Parameter(torch.empty(inner))
        self.out_proj = nn.Linear(inner, d, bias=False)
        self.load_state_dict(weights)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u: (b, n, d) -> (b, n, d)"""
        raise NotImplementedError("TODO: in_proj, causal conv, SiLU, Δ/B/C, the scan over t, gate with SiLU(z), out_proj")

    def init_state(self, batch: int) -> dict:
        raise NotImplementedError("TODO: conv window zeros (b, D_in, K−1), h zeros (b, D_in, N)")

    def prefill(self, u: torch.Tensor) -> tuple:
        raise NotImplementedError("TODO: (forward(u), the state after n tokens)")

    def step(self, u_t: torch.Tensor, state: dict) -> tuple:
        raise NotImplementedError("TODO: one token: conv over the window + u_t, one scan step")


def build(config: dict, weights: dict) -> nn.Module:
    return MyMamba(config, weights)
