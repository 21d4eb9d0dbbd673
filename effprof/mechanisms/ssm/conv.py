"""Parts shared by the Mamba and Mamba-2 blocks: the causal depthwise convolution and the Δ initialisation.

Causal depthwise convolution of width K over time, channel by channel:

    x̃_t = Σ_{j<K} w_j ⊙ x_{t-K+1+j} + b          (x_{t} = 0 for t < 0)

Decode keeps the last K-1 inputs (the window); a step appends x_t, convolves the K inputs once and drops
the oldest.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from effprof.analytic import Tally


class CausalConv1d(nn.Module):
    def __init__(self, channels: int, width: int):
        super().__init__()
        self.width = width
        self.conv = nn.Conv1d(channels, channels, width, groups=channels)  # w: (channels, 1, K), b: (channels,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, n, channels) -> x̃: (b, n, channels)"""
        return self.conv(F.pad(x.transpose(1, 2), (self.width - 1, 0))).transpose(1, 2)

    def window(self, x: torch.Tensor) -> torch.Tensor:
        """The decode window after x: its last K-1 inputs (zeros before the start), (b, channels, K-1)."""
        keep = min(self.width - 1, x.shape[1])
        tail = x[:, x.shape[1] - keep :].transpose(1, 2)  # (b, channels, keep)
        return F.pad(tail, (self.width - 1 - keep, 0)).clone()  # its own storage, not the sequence's

    def step(self, x_t: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t: (b, 1, channels), window: (b, channels, K-1) -> x̃_t: (b, 1, channels), next window."""
        inputs = torch.cat([window, x_t.transpose(1, 2)], dim=-1)  # (b, channels, K)
        return self.conv(inputs).transpose(1, 2), inputs[..., 1:].clone()


def conv_cost(t: Tally, tokens: int, channels: int, width: int) -> None:
    """FLOPs of CausalConv1d over `tokens` outputs: K multiply-adds and a bias each; backward dx, dw, db."""
    outputs = tokens * channels
    t.add((2 * width + 1) * outputs, (4 * width + 1) * outputs)


def init_dt_bias(n: int, dt_min: float = 1e-3, dt_max: float = 1e-1) -> torch.Tensor:
    """Bias b with softplus(b) = Δ ~ log-uniform in [dt_min, dt_max] (Mamba's initialisation)."""
    dt = torch.exp(torch.empty(n).uniform_(math.log(dt_min), math.log(dt_max)))
    return dt + torch.log(-torch.expm1(-dt))  # softplus⁻¹(Δ)
