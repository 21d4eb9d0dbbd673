"""A test plugin: a short causal depthwise convolution token mixer (as in H3 / Mamba's conv).

    y_t = W_o Σ_{j<k} w_j ⊙ (W_i x)_{t−j}

It lives outside effprof and is loaded with `--plugin tests.plugins.short_conv:short_conv`.
The broken variants below each violate one part of the contract.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from effprof.cost_model import Tally, dtype_bytes, mean_over_decode
from effprof.mechanisms.base import Mechanism
from effprof.registry import Claim, Cost, MechanismSpec, Paper

KERNEL = 4


class ShortConv(Mechanism):
    def __init__(self, d_model: int):
        super().__init__()
        self.in_proj = nn.Linear(d_model, d_model, bias=False)
        self.weight = nn.Parameter(torch.randn(d_model, 1, KERNEL) / KERNEL)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prefill(x)[0]

    def init_state(self, batch: int) -> torch.Tensor:
        return self.weight.new_zeros(batch, self.weight.shape[0], KERNEL - 1)

    def prefill(self, x: torch.Tensor):
        u = self.in_proj(x).transpose(1, 2)  # (b, d, n)
        padded = F.pad(u, (KERNEL - 1, 0))
        y = F.conv1d(padded, self.weight, groups=u.shape[1])  # (b, d, n)
        return self.out_proj(y.transpose(1, 2)), padded[:, :, -(KERNEL - 1):].clone()  # its own storage: the state is k-1 taps

    def step(self, x_t: torch.Tensor, state: torch.Tensor):
        u = self.in_proj(x_t).transpose(1, 2)  # (b, d, 1)
        window = torch.cat([state, u], dim=2)  # (b, d, k)
        y = (window * self.weight[:, 0]).sum(dim=2, keepdim=True)
        return self.out_proj(y.transpose(1, 2)), window[:, :, 1:].clone()


def short_conv_cost(config: dict, mode: str) -> Cost:
    b, n, d = config["batch"], config["seq_len"], config["d_model"]
    state = b * d * (KERNEL - 1) * dtype_bytes(config)
    if mode == "decode":
        return Cost(mean_over_decode(config, lambda _: 4.0 * b * d * d + 2 * b * d * KERNEL), state)
    t = Tally()
    t.linear(b * n, d, d)
    t.add(2.0 * b * n * d * KERNEL, 4.0 * b * n * d * KERNEL)
    t.linear(b * n, d, d)
    return Cost(t.total(mode), state)


def _spec(name: str, builder) -> MechanismSpec:
    """Plain specs, registered only when loaded as a plugin (importing this module registers nothing)."""
    return MechanismSpec(name=name, builder=builder, **SPEC)


SPEC = dict(
    family="plugin", summary="short causal depthwise convolution (test plugin)", paper=Paper("Hungry Hungry Hippos", 2022, "2212.14052"),
    causal=True, defaults={}, cost=short_conv_cost, claims=(Claim("flops", "seq_len", 1.0, "forward"),),
)


short_conv = _spec("short_conv", lambda config: ShortConv(config["d_model"]))


class Acausal(ShortConv):
    def forward(self, x):  # looks at the future: flips the sequence
        return super().forward(x.flip(1)).flip(1)


acausal_conv = _spec("acausal_conv", lambda config: Acausal(config["d_model"]))


class WrongShape(ShortConv):
    def forward(self, x):
        return super().forward(x)[:, :-1]


wrong_shape_conv = _spec("wrong_shape_conv", lambda config: WrongShape(config["d_model"]))
no_cost_conv = MechanismSpec(name="no_cost_conv", builder=short_conv.builder, **{**SPEC, "cost": None})
