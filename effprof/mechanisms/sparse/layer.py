"""The sparse layer: Q/K/V/O projections around a sparse attention core (attend.py), and its static-plan kind."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from effprof.mechanisms.base import Mechanism, merge_heads, split_heads
from effprof.mechanisms.sparse.attend import fused_plan, run_plan
from effprof.mechanisms.sparse.layout import Plan
from effprof.mechanisms.sparse.pairs import plan_pairs
from effprof.mechanisms.sparse.static import pad_tokens, plan_bias, plan_index, static_tensor


class SparseAttention(Mechanism):
    """Q/K/V/O projections around a sparse attention core.

    Subclasses provide `masked(q, k, v)` (the dense reference), `fast(q, k, v)` (the gathered
    form; q, k, v are (b, h, n, d), q already scaled by 1/√d), `pairs(q, k)` (the pattern),
    and the decode methods. `shared_qk`: Reformer's tied keys k_j = q_j / ‖q_j‖.
    """

    shared_qk = False

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        d_model, self.n_heads, self.head_dim = config["d_model"], config["n_heads"], config["head_dim"]
        self.impl = config["impl"]
        self.scale = 1.0 / math.sqrt(self.head_dim)
        inner = self.n_heads * self.head_dim
        self.q_proj = nn.Linear(d_model, inner, bias=False)  # W^Q
        if not self.shared_qk:
            self.k_proj = nn.Linear(d_model, inner, bias=False)  # W^K
        self.v_proj = nn.Linear(d_model, inner, bias=False)  # W^V
        self.o_proj = nn.Linear(inner, d_model, bias=False)  # W^O

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (b, n, d_model) -> q·1/√d, k, v: (b, h, n, d)."""
        q = split_heads(self.q_proj(x), self.n_heads)  # (b, h, n, d)
        k = q / q.norm(dim=-1, keepdim=True) if self.shared_qk else split_heads(self.k_proj(x), self.n_heads)
        v = split_heads(self.v_proj(x), self.n_heads)
        return q * self.scale, k, v

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.masked(q, k, v) if self.impl == "masked" else self.fast(q, k, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.project(x)
        return self.o_proj(merge_heads(self.attention(q, k, v)))

    def prefill(self, x: torch.Tensor):
        q, k, v = self.project(x)
        return self.o_proj(merge_heads(self.attention(q, k, v))), self.cache(q, k, v)

    def pattern(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(query, key) pairs the fast form attends for input x (batch 0, union over heads)."""
        with torch.no_grad():
            q, k, _ = self.project(x)
            return self.pairs(q, k)

    # subclasses
    def masked(self, q, k, v):  # pragma: no cover - interface
        raise NotImplementedError

    def fast(self, q, k, v):  # pragma: no cover - interface
        raise NotImplementedError

    def pairs(self, q, k):  # pragma: no cover - interface
        raise NotImplementedError

    def cache(self, q, k, v):  # pragma: no cover - interface
        raise NotImplementedError

    def output(self, o: torch.Tensor) -> torch.Tensor:
        return self.o_proj(merge_heads(o))


class StaticPlanAttention(SparseAttention):
    """A sparse mechanism whose fast form is a static Plan fixed by (n, config): it defines `plan(n, device)`,
    and `plan_args(n)` (its plan builder and arguments) for the fused form (impl "fused", attend.fused_plan)."""

    def plan(self, n: int, device: torch.device) -> Plan:  # pragma: no cover - interface
        raise NotImplementedError

    def plan_args(self, n: int) -> tuple:  # pragma: no cover - interface
        raise NotImplementedError

    def attention(self, q, k, v):
        return self.fused(q, k, v) if self.impl == "fused" else super().attention(q, k, v)

    def fused(self, q, k, v):
        n = q.shape[2]
        plan, args = self.plan(n, q.device), self.plan_args(n)
        index = static_tensor(plan_index, *args, device=q.device, dtype=torch.long)  # (G, ΣL)
        bias = static_tensor(plan_bias, *args, device=q.device, dtype=q.dtype)  # (G, r, ΣL)
        length = plan.layout.length
        return fused_plan(plan.layout, index, bias, pad_tokens(q, length), pad_tokens(k, length), pad_tokens(v, length))[:, :, :n]

    def fast(self, q, k, v):
        n = q.shape[2]
        plan = self.plan(n, q.device)
        length = plan.layout.length
        return run_plan(plan, pad_tokens(q, length), pad_tokens(k, length), pad_tokens(v, length))[:, :, :n]

    def pairs(self, q, k):
        return plan_pairs(self.plan(q.shape[2], q.device), q.shape[2])
