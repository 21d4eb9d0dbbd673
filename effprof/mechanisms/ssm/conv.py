"""Parts shared by the Mamba and Mamba-2 blocks: the causal depthwise convolution and the Δ initialisation.

Causal depthwise convolution of width K over time, channel by channel:

    x̃_t = Σ_{j<K} w_j ⊙ x_{t-K+1+j} + b          (x_{t} = 0 for t < 0)

Decode keeps the last K-1 inputs (the window); a step appends x_t, convolves the K inputs once and drops
the oldest. The weights are nn.Conv1d's (w: (channels, 1, K), b), applied as K shifted multiply-adds.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from effprof.cost_model import Tally


class CausalConv1d(nn.Module):
    def __init__(self, channels: int, width: int):
        super().__init__()
        self.width = width
        self.conv = nn.Conv1d(channels, channels, width, groups=channels)  # w: (channels, 1, K), b: (channels,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, n, channels) -> x̃: (b, n, channels), as K shifted multiply-adds in the tokens-major layout.

        (nn.Conv1d wants channels-major input: transposing in and out costs two copies of x, more than the
        K multiply-adds themselves; the result here is contiguous for what follows.)
        """
        n, K = x.shape[1], self.width
        padded = F.pad(x, (0, 0, K - 1, 0))  # x_t = 0 for t < 0: (b, n + K - 1, channels)
        return self._taps([padded[:, j : j + n] for j in range(K)])  # tap j: x_{t-K+1+j}

    def window(self, x: torch.Tensor) -> torch.Tensor:
        """The decode window after x: its last K-1 inputs (zeros before the start), (b, channels, K-1)."""
        keep = min(self.width - 1, x.shape[1])
        tail = x[:, x.shape[1] - keep :].transpose(1, 2)  # (b, channels, keep)
        return F.pad(tail, (self.width - 1 - keep, 0)).clone()  # its own storage, not the sequence's

    def step(self, x_t: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t: (b, 1, channels), window: (b, channels, K-1) -> x̃_t: (b, 1, channels), next window."""
        inputs = torch.cat([window, x_t.transpose(1, 2)], dim=-1)  # (b, channels, K)
        return self._taps(inputs.unbind(-1))[:, None], inputs[..., 1:].clone()

    def _taps(self, taps: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
        """b + Σ_j w_j ⊙ taps[j], as K addcmuls (the bias is the first one's addend): (…, channels)."""
        w = self.conv.weight[:, 0]  # (channels, K)
        out = torch.addcmul(self.conv.bias, taps[0], w[:, 0])
        for j in range(1, self.width):
            out = torch.addcmul(out, taps[j], w[:, j])
        return out


def conv_cost(t: Tally, batch: int, length: int, channels: int, width: int) -> None:
    """FLOPs of CausalConv1d over `length` outputs per sequence: K addcmuls (2 each, the bias is the first's
    addend). Backward (as the counter measures it): per addcmul 3 products and a Σ over tokens into w_j, a Σ
    into b; the K shifted slices' gradients summed over the padded input; assembling w's gradient from its
    K columns, K·channels products and (K − 1)·K·channels adds."""
    outputs, K = batch * length * channels, width
    backward = (4 * K + 1) * outputs + (K - 1) * batch * (length + K - 1) * channels + K * channels + (K - 1) * K * channels
    t.add(2 * K * outputs, backward)


def init_dt_bias(n: int, dt_min: float = 1e-3, dt_max: float = 1e-1) -> torch.Tensor:
    """Bias b with softplus(b) = Δ ~ log-uniform in [dt_min, dt_max] (Mamba's initialisation)."""
    dt = torch.exp(torch.empty(n).uniform_(math.log(dt_min), math.log(dt_max)))
    return dt + torch.log(-torch.expm1(-dt))  # softplus⁻¹(Δ)
