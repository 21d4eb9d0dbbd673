"""Week 16, project 5 (week 11): a hybrid, Mamba + MoE + attention + FFN in one pre-norm residual stack.

    effprof course 11 --template > my_hybrid.py
    effprof course 11 --check my_hybrid.py:build    # checked against effprof's hybrid, pattern MEAF

The project is the combination, so the four layers come ready-made (effprof's own, loaded with the weights):
you write the stack around them — the norms, the residual stream, and a decode state combined from the
layers' own states. Equations (week 11), for input x: (b, n, d):

    h_0 = x
    h_ℓ = h_{ℓ−1} + f_ℓ(RMSNorm_ℓ(h_{ℓ−1}))          ℓ = 1 … L, f = (Mamba, MoE, attention, FFN)
    RMSNorm(h) = h / √(mean(h²) + 1e-6) ⊙ w          mean over the last dimension
    y = h_L

Each layer f_ℓ has forward(x), init_state(b), prefill(x) -> (y, state), step(x_t, state) -> (y_t, state).

Weights: build(config, weights) receives the reference config and its state_dict(): blocks.ℓ.norm.weight (d,)
for the norms, and blocks.ℓ.mixer.* for the layers (reference_layers loads those for you).

The checker wants: forward(x) (b, n, d) -> (b, n, d), causal; init_state(b); prefill(x) -> (y, state);
step(x_t, state) -> (y_t, state); the state is the tuple of the layers' states (only attention's grows with n).
"""

import torch
from torch import nn

from effprof.course.layers import reference_layers


class MyHybrid(nn.Module):
    def __init__(self, config: dict, weights: dict):
        super().__init__()
        self.layers = nn.ModuleList(reference_layers(config, weights))  # f_1 … f_L, weights loaded
        self.norm_weights = nn.ParameterList(
            nn.Parameter(weights[f"blocks.{i}.norm.weight"].clone()) for i in range(len(self.layers)))  # w of each RMSNorm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, n, d) -> (b, n, d)"""
        raise NotImplementedError("TODO: h = x; for each layer: h = h + f(RMSNorm(h))")

    def init_state(self, batch: int) -> tuple:
        raise NotImplementedError("TODO: the tuple of each layer's init_state(batch)")

    def prefill(self, x: torch.Tensor) -> tuple:
        raise NotImplementedError("TODO: as forward, collecting each layer's prefill state")

    def step(self, x_t: torch.Tensor, state: tuple) -> tuple:
        raise NotImplementedError("TODO: as forward on one token, each layer stepping its own state")


def build(config: dict, weights: dict) -> nn.Module:
    return MyHybrid(config, weights)
