"""The experts of a mixture-of-experts layer: position-wise feed-forward networks (FFNs).

    GELU FFN:    E(x) = GELU(x W_in) W_out                      W_in: (d × f),   W_out: (f × d)
    SwiGLU FFN:  E(x) = (SiLU(x W_gate) ⊙ x W_up) W_out         W_gate, W_up: (d × f)  (stored fused as W_in: d × 2f)

Glossary: T tokens, d d_model, f d_ff (hidden width of one expert), e n_experts,
C tokens in one expert's group. An FFN acts on each token alone: E(X) row t = E(x_t).

`Experts` stores the e experts' weights stacked, (e, d, 2f) and (e, f, d), so one
expert is a pair of matmuls on its own group of tokens (`Experts.expert`) and e
equal-sized groups are two batched matmuls (`Experts.batched`). `FeedForward` is one
FFN: the dense baseline and the always-active shared experts (n_shared_experts FFNs
of width f summed = one FFN of width n_shared_experts·f).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from effprof.config import declare_key

ACTIVATIONS = ("swiglu", "gelu")

declare_key("activation", str, "feed-forward nonlinearity: swiglu (SiLU(xW)*xV, LLaMA/Mixtral) or gelu")
declare_key("n_shared_experts", int, "always-active shared experts added to the routed ones (DeepSeekMoE)", positive=False)


def input_width(d_ff: int, activation: str) -> int:
    """Columns of W_in: SwiGLU holds the gate and up projections side by side."""
    return 2 * d_ff if activation == "swiglu" else d_ff


def ffn(x: torch.Tensor, w_in: torch.Tensor, w_out: torch.Tensor, activation: str) -> torch.Tensor:
    """E(x): x (..., C, d), w_in (..., d, 2f or f), w_out (..., f, d) -> (..., C, d); batched dims matmul as bmm."""
    h = x @ w_in  # (..., C, 2f) or (..., C, f)
    if activation == "swiglu":
        gate, up = h.chunk(2, dim=-1)  # x W_gate, x W_up: (..., C, f) each
        h = F.silu(gate) * up
    else:
        h = F.gelu(h)
    return h @ w_out  # (..., C, d)


def _uniform(*shape: int, fan_in: int) -> nn.Parameter:
    """nn.Linear's default initialisation, U(−1/√fan_in, 1/√fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class FeedForward(nn.Module):
    """One FFN of hidden width d_ff (no biases)."""

    def __init__(self, d_model: int, d_ff: int, activation: str):
        super().__init__()
        self.activation = activation
        self.w_in = _uniform(d_model, input_width(d_ff, activation), fan_in=d_model)  # (d, 2f) or (d, f)
        self.w_out = _uniform(d_ff, d_model, fan_in=d_ff)  # (f, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (T, d) -> (T, d)"""
        return ffn(x, self.w_in, self.w_out, self.activation)


class Experts(nn.Module):
    """e FFNs of hidden width d_ff with their weights stacked along a leading expert axis."""

    def __init__(self, n_experts: int, d_model: int, d_ff: int, activation: str):
        super().__init__()
        self.activation = activation
        self.w_in = _uniform(n_experts, d_model, input_width(d_ff, activation), fan_in=d_model)  # (e, d, 2f)
        self.w_out = _uniform(n_experts, d_ff, d_model, fan_in=d_ff)  # (e, f, d)

    def each(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        """[E_0, …, E_{e−1}]: E_i maps x (C, d) -> (C, d) with one pair of matmuls.

        Call once per forward: the weights are split with unbind, whose backward is one stack,
        where indexing w_in[i] per expert would add e full-size gradients (e² work).
        """
        pairs = zip(self.w_in.unbind(0), self.w_out.unbind(0), strict=False)
        return [partial(ffn, w_in=w_in, w_out=w_out, activation=self.activation) for w_in, w_out in pairs]

    def batched(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert on its own group of C tokens: x (e, C, d) -> (e, C, d), one pair of bmm."""
        return ffn(x, self.w_in, self.w_out, self.activation)
