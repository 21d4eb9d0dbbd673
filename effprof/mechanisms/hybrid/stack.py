"""A generic pre-norm residual stack of registered mechanisms (the body of every hybrid model).

Notation (the roadmap's, week 9: hybrids interleave attention with SSM, linear or sparse layers
and put MoE FFNs between them). For input x: (b, n, d):

    h₀ = x
    h_ℓ = h_{ℓ-1} + f_ℓ(RMSNorm_ℓ(h_{ℓ-1}))          ℓ = 1 … L, f_ℓ the ℓ-th layer (mixer or FFN)
    RMSNorm(h) = h / √(mean(h²) + ε) ⊙ w
    y = h_L

Decode: the state is the tuple over blocks of each layer's own state (KV cache of an attention
layer, conv window + SSM state of a Mamba layer, S and z of linear attention, () for an FFN);
step(x_t, state) runs each layer's step on its own entry and returns a new tuple, so
state bytes = Σ_ℓ state_ℓ: O(n) for each attention layer, O(1) for the others.

FLOPs = Σ_ℓ FLOPs(f_ℓ) + the glue: L RMSNorms and residual adds (cost.py).

Glossary: b batch, n seq_len, d d_model, L blocks (n_layers), f_ℓ the ℓ-th registered mechanism,
w the norm's weight, ε = 1e-6.
"""

from __future__ import annotations

import torch
from torch import nn

from effprof.mechanisms.base import Mechanism, State
from effprof.mechanisms.hybrid import blocks
from effprof.mechanisms.hybrid import plan as layout
from effprof.runtime.storage import storage_key


class Stack(Mechanism):
    def __init__(self, block_modules: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(block_modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x  # (b, n, d)
        for block in self.blocks:
            h = block(h, x)
        return h

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        h, states = x, []
        for block in self.blocks:
            h, state = block.prefill(h, x)
            states.append(state)
        return h, tuple(states)

    def init_state(self, batch: int) -> tuple:
        return tuple(block.init_state(batch) for block in self.blocks)

    def step(self, x_t: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        h, states = x_t, []  # (b, 1, d)
        for block, block_state in zip(self.blocks, state, strict=False):
            h, new_state = block.step(h, x_t, block_state)
            states.append(new_state)
        return h, tuple(states)

    def state_items(self, state: State) -> list[tuple[str, torch.Tensor]]:
        return [item for block, block_state in zip(self.blocks, state, strict=False) for item in block.state_items(block_state)]

    def state_breakdown(self, state: State) -> dict[str, int]:
        """Decode-state bytes by kind (attention_kv, ssm, conv, ...); each storage counted once, so the
        values sum to base.state_nbytes(state)."""
        owner: dict[int, tuple[str, int]] = {}
        for kind, tensor in self.state_items(state):
            owner.setdefault(storage_key(tensor), (kind, tensor.untyped_storage().nbytes()))
        breakdown: dict[str, int] = {}
        for kind, nbytes in owner.values():
            breakdown[kind] = breakdown.get(kind, 0) + nbytes
        return breakdown

    def layer_kinds(self) -> list[tuple[str, nn.Module]]:
        """(kind, sub-layer module) once per module (a shared block's layers appear once)."""
        seen: set[int] = set()
        kinds = []
        for block in self.blocks:
            for kind, module in block.layer_kinds():
                if id(module) not in seen:
                    seen.add(id(module))
                    kinds.append((kind, module))
        return kinds


def build_blocks(plans: tuple[layout.Block, ...], d_model: int, shared: dict[int, Stack] | None = None) -> list[nn.Module]:
    """Modules of a plan's blocks; every Shared entry of one SharedBlocks reuses one module."""
    shared = {} if shared is None else shared
    modules: list[nn.Module] = []
    for block in plans:
        if isinstance(block, layout.Residual):
            modules.append(blocks.Residual(block.layer, d_model))
        elif isinstance(block, layout.Parallel):
            modules.append(blocks.Parallel(block.attention, block.ssm, d_model))
        else:
            key = id(block.shared)
            if key not in shared:
                shared[key] = Stack(build_blocks(block.shared.blocks, block.shared.d_model, shared))
            modules.append(blocks.Shared(shared[key], d_model))
    return modules


def build_stack(plan: layout.StackPlan, cls: type[Stack] = Stack, **kwargs) -> Stack:
    return cls(build_blocks(plan.blocks, plan.config["d_model"]), **kwargs)
