"""A new user's own layers (issue 25): module factories gated in CI with `effprof check`.

    --module tests.plugins.mylayers:build_gated_conv      linear in seq_len: y = W_o((W_g x) ⊙ conv_k(W_i x))
    --module tests.plugins.mylayers:build_quadratic       quadratic in seq_len: y = softmax(x xᵀ/√d) x

tests.plugins.counted_conv registers the gated convolution as a plugin mechanism with no cost model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GatedConv(nn.Module):
    """y = W_o((W_g x) ⊙ conv_k(W_i x)): a depthwise causal convolution of width k, gated; linear in seq_len."""

    def __init__(self, d_model: int, kernel: int):
        super().__init__()
        self.k = kernel
        self.in_proj = nn.Linear(d_model, d_model, bias=False)  # W_i
        self.gate = nn.Linear(d_model, d_model, bias=False)  # W_g
        self.weight = nn.Parameter(torch.randn(d_model, 1, kernel) / kernel)  # one filter per channel
        self.out_proj = nn.Linear(d_model, d_model, bias=False)  # W_o

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (b, n, d)
        u = F.pad(self.in_proj(x).transpose(1, 2), (self.k - 1, 0))  # (b, d, k−1+n)
        v = F.conv1d(u, self.weight, groups=u.shape[1]).transpose(1, 2)  # (b, n, d)
        return self.out_proj(self.gate(x) * v)


class Quadratic(nn.Module):
    """y = softmax(x xᵀ/√d) x W_o: every token attends to every token; n² d FLOPs."""

    def __init__(self, d_model: int):
        super().__init__()
        self.out_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (b, n, d)
        scores = x @ x.transpose(1, 2) / x.shape[-1] ** 0.5  # (b, n, n)
        return self.out_proj(scores.softmax(-1) @ x)


def build_gated_conv(d_model: int, kernel: int = 4) -> nn.Module:
    """A gated short convolution (linear in seq_len)."""
    return GatedConv(d_model, kernel)


def build_quadratic(d_model: int) -> nn.Module:
    """Full softmax mixing without projections (quadratic in seq_len)."""
    return Quadratic(d_model)
