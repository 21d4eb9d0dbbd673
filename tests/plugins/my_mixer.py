"""The README's "Adding a mechanism" template, as a plugin that runs from a fresh clone:

    python -m effprof profile my_mixer --plugin tests.plugins.my_mixer:build_my_mixer --mode decode
    python -m effprof validate tests.plugins.my_mixer:build_my_mixer

A causal depthwise convolution over the last k tokens between two projections
(the short convolution of H3 and Mamba):

    u = x W_in,   v_t = Σ_{j<k} w_j ⊙ u_{t−j},   y = v W_out        x, y: (b, n, d);  w: (d, k)

Decode keeps the last k−1 values of u: a state of b·d·(k−1) numbers, whatever the context.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from effprof.cost_model import Tally, dtype_bytes, mean_over_decode
from effprof.mechanisms.base import Mechanism
from effprof.registry import Claim, Cost, MechanismSpec, Paper, register


class MyMixer(Mechanism):
    def __init__(self, d_model: int, d_conv: int):
        super().__init__()
        self.k = d_conv
        self.in_proj = nn.Linear(d_model, d_model, bias=False)  # W_in
        self.weight = nn.Parameter(torch.randn(d_model, 1, d_conv) / d_conv)  # w, one filter per channel
        self.out_proj = nn.Linear(d_model, d_model, bias=False)  # W_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prefill(x)[0]

    def init_state(self, batch: int) -> torch.Tensor:
        return self.weight.new_zeros(batch, self.weight.shape[0], self.k - 1)  # (b, d, k−1)

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = F.pad(self.in_proj(x).transpose(1, 2), (self.k - 1, 0))  # (b, d, k−1+n)
        v = F.conv1d(u, self.weight, groups=u.shape[1])  # (b, d, n)
        return self.out_proj(v.transpose(1, 2)), u[:, :, -(self.k - 1):].clone()  # the state owns its storage

    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        window = torch.cat([state, self.in_proj(x_t).transpose(1, 2)], dim=2)  # (b, d, k)
        v = (window * self.weight[:, 0]).sum(dim=2, keepdim=True)  # (b, d, 1)
        return self.out_proj(v.transpose(1, 2)), window[:, :, 1:].clone()


def my_cost(config: dict, mode: str) -> Cost:
    """FLOPs of `mode`: forward, forward + backward, or decode PER GENERATED TOKEN."""
    b, n, d, k = config["batch"], config["seq_len"], config["d_model"], config["d_conv"]
    state = b * d * (k - 1) * dtype_bytes(config)
    if mode == "decode":
        # one step: two projections of one token (2·d² each) and k multiplies + k adds per channel;
        # mean_over_decode averages per_token(context) over the gen_len steps (context-free here; a KV
        # cache's step would grow with it)
        return Cost(mean_over_decode(config, lambda context: 4.0 * b * d * d + 2.0 * b * d * k), state)
    t = Tally()
    t.linear(b * n, d, d)  # W_in
    t.add(2.0 * b * n * d * k, 4.0 * b * n * d * k)  # the convolution; backward: grads of u and of w
    t.linear(b * n, d, d)  # W_out
    return Cost(t.total(mode), state_bytes=state)


@register(MechanismSpec(
    name="my_mixer", family="plugin", summary="causal depthwise short convolution between two projections",
    paper=Paper("Hungry Hungry Hippos: Towards Language Modeling with State Space Models", 2022, "2212.14052"),
    causal=True, defaults={"d_conv": 4}, cost=my_cost,
    claims=(Claim("flops", "seq_len", 1.0, "forward"), Claim("state_bytes", "seq_len", 0.0, "decode")),
    complexity={"prefill": "O(N·d²)", "train": "O(N·d²)", "decode": "O(d²) per token", "state": "O(d·k)"},
))
def build_my_mixer(config: dict) -> MyMixer:
    return MyMixer(config["d_model"], config["d_conv"])
