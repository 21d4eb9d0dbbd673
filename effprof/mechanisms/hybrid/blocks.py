"""The blocks of a hybrid stack as modules (plan.py describes them; cost.py costs them).

    RMSNorm(x) = x / √(mean(x²) + ε) ⊙ w                      per token, over the d features
    Residual:  h ← h + f(RMSNorm(h))                           f a registered mechanism (mixer or FFN)
    Parallel:  u = RMSNorm(h),  h ← h + ½(β₁ ⊙ RMSNorm(Attn(u)) + β₂ ⊙ RMSNorm(SSM(u)))     (Hymba's fusion;
               β₁, β₂ are the output norms' weights)
    Shared:    h ← h + Blocks([h ; x₀]) W_ℓ                    (Zamba; Blocks shared, W_ℓ: (2d × d) per application)

Every block runs forward(h, x₀), prefill(h, x₀) -> (h, state), step(h_t, x₀_t, state) -> (h_t, state)
with x₀ the stack's input (only Shared reads it), and lists its state tensors by kind (state_items).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from effprof.mechanisms.base import State, state_tensors
from effprof.mechanisms.hybrid.layers import Layer, state_kind

RMS_EPS = 1e-6


class RMSNorm(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))  # w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., d) -> x / √(mean(x²) + ε) ⊙ w"""
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS) * self.weight


def build_layer(layer: Layer) -> nn.Module:
    module = layer.build()
    module.config = layer.config
    return module


def layer_state_items(name: str, state: State) -> list[tuple[str, torch.Tensor]]:
    """(kind, tensor) for each tensor of a sub-layer's state: dict entries by key (conv vs ssm), else by layer."""
    if isinstance(state, dict):
        return [(state_kind(name, key), t) for key, value in state.items() for t in state_tensors(value)]
    return [(state_kind(name, None), t) for t in state_tensors(state)]


class Residual(nn.Module):
    """h ← h + f(RMSNorm(h))"""

    def __init__(self, layer: Layer, d_model: int):
        super().__init__()
        self.name, self.kind = layer.name, layer.kind
        self.norm = RMSNorm(d_model)
        self.mixer = build_layer(layer)

    def forward(self, h: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return h + self.mixer(self.norm(h))

    def prefill(self, h: torch.Tensor, x0: torch.Tensor) -> tuple[torch.Tensor, State]:
        y, state = self.mixer.prefill(self.norm(h))
        return h + y, state

    def init_state(self, batch: int) -> State:
        return self.mixer.init_state(batch)

    def step(self, h_t: torch.Tensor, x0_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        y, state = self.mixer.step(self.norm(h_t), state)
        return h_t + y, state

    def state_items(self, state: State) -> list[tuple[str, torch.Tensor]]:
        return layer_state_items(self.name, state)

    def layer_kinds(self) -> list[tuple[str, nn.Module]]:
        return [(self.kind, self.mixer)]


class Parallel(nn.Module):
    """Hymba's hybrid-head block: attention and SSM heads read the same input; their normalised outputs are averaged."""

    def __init__(self, attention: Layer, ssm: Layer, d_model: int):
        super().__init__()
        self.names = (attention.name, ssm.name)
        self.kinds = (attention.kind, ssm.kind)
        self.norm = RMSNorm(d_model)
        self.attention, self.ssm = build_layer(attention), build_layer(ssm)
        self.attention_norm, self.ssm_norm = RMSNorm(d_model), RMSNorm(d_model)  # weights: β₁, β₂

    def fuse(self, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """½(β₁ ⊙ RMSNorm(a) + β₂ ⊙ RMSNorm(s)): (b, n, d)"""
        return (self.attention_norm(a) + self.ssm_norm(s)) * 0.5

    def forward(self, h: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        u = self.norm(h)
        return h + self.fuse(self.attention(u), self.ssm(u))

    def prefill(self, h: torch.Tensor, x0: torch.Tensor) -> tuple[torch.Tensor, State]:
        u = self.norm(h)
        a, attention_state = self.attention.prefill(u)
        s, ssm_state = self.ssm.prefill(u)
        return h + self.fuse(a, s), {"attention": attention_state, "ssm": ssm_state}

    def init_state(self, batch: int) -> State:
        return {"attention": self.attention.init_state(batch), "ssm": self.ssm.init_state(batch)}

    def step(self, h_t: torch.Tensor, x0_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        u = self.norm(h_t)
        a, attention_state = self.attention.step(u, state["attention"])
        s, ssm_state = self.ssm.step(u, state["ssm"])
        return h_t + self.fuse(a, s), {"attention": attention_state, "ssm": ssm_state}

    def state_items(self, state: State) -> list[tuple[str, torch.Tensor]]:
        return layer_state_items(self.names[0], state["attention"]) + layer_state_items(self.names[1], state["ssm"])

    def layer_kinds(self) -> list[tuple[str, nn.Module]]:
        return [(self.kinds[0], self.attention), (self.kinds[1], self.ssm)]


class Shared(nn.Module):
    """One application of Zamba's shared block: h ← h + Blocks([h ; x₀]) W_ℓ.

    `shared` is the same module object in every application (one set of weights; torch counts
    its parameters once); `proj` (W_ℓ) is this application's own. Each application keeps its
    own decode state: the shared attention sees different inputs at each depth.
    """

    def __init__(self, shared: nn.Module, d_model: int):
        super().__init__()
        self.shared = shared  # a Stack at width 2·d_model
        self.proj = nn.Linear(2 * d_model, d_model, bias=False)  # W_ℓ

    def forward(self, h: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return h + self.proj(self.shared(torch.cat([h, x0], dim=-1)))  # [h ; x₀]: (b, n, 2d)

    def prefill(self, h: torch.Tensor, x0: torch.Tensor) -> tuple[torch.Tensor, State]:
        y, state = self.shared.prefill(torch.cat([h, x0], dim=-1))
        return h + self.proj(y), state

    def init_state(self, batch: int) -> State:
        return self.shared.init_state(batch)

    def step(self, h_t: torch.Tensor, x0_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        y, state = self.shared.step(torch.cat([h_t, x0_t], dim=-1), state)
        return h_t + self.proj(y), state

    def state_items(self, state: State) -> list[tuple[str, Any]]:
        return self.shared.state_items(state)

    def layer_kinds(self) -> list[tuple[str, nn.Module]]:
        return self.shared.layer_kinds()
