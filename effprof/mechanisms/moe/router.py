"""The gating network of a mixture-of-experts layer and token-choice top-k selection.

    Router probabilities:  P = softmax(X W_g + b_g)                      (T × e)
    Token choice:          (G, I) = Top-k(P) row by row                  G, I: (T × k)
                           G ← G / Σ_k G   when k > 1 (renormalised over the chosen experts)
    Expert capacity:       C = ⌈capacity_factor · T · k / e⌉  (no limit when capacity_factor ≤ 0)

Glossary: T tokens (batch·seq_len), d d_model, e n_experts, k top_k, W_g (d × e) and
b_g (e) the router weights, G the gate values, I the chosen expert indices.

With k = 1 the gate is the raw probability p_I (Switch Transformer): renormalised it would
be 1 and the router would get no gradient from the layer's output.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Router(nn.Module):
    """X (T, d) -> router logits XW_g + b_g (T, e) and probabilities P (T, e)."""

    def __init__(self, d_model: int, n_experts: int):
        super().__init__()
        self.gate = nn.Linear(d_model, n_experts)  # W_g, b_g

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.gate(x)  # X W_g + b_g: (T, e)
        return logits, torch.softmax(logits, dim=-1)  # P: (T, e)


def top_k_gates(probs: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token choice: P (T, e) -> gates G (T, k) and expert indices I (T, k), best expert first."""
    gates, experts = probs.topk(top_k, dim=-1)  # (T, k), (T, k)
    if top_k > 1:
        gates = gates / gates.sum(dim=-1, keepdim=True)
    return gates, experts


def token_choice_capacity(tokens: int, top_k: int, n_experts: int, capacity_factor: float) -> int | None:
    """C = ⌈capacity_factor · T · k / e⌉ assignments per expert, None (no limit) when capacity_factor ≤ 0."""
    if capacity_factor <= 0:
        return None
    return math.ceil(capacity_factor * tokens * top_k / n_experts)
