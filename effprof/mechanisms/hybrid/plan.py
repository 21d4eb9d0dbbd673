"""The layout of a stack as plain data: what stack.py builds and cost.py costs, from one description.

    Residual(layer)               h ← h + layer(RMSNorm(h))                         one registered mechanism
    Parallel(attention, ssm)      h ← h + ½(β₁⊙RMSNorm(Attn(u)) + β₂⊙RMSNorm(SSM(u))),  u = RMSNorm(h)   (Hymba)
    Shared(blocks, application)   h ← h + Blocks([h ; x₀]) W_ℓ                      (Zamba; `blocks` is one
                                  object for every application: one set of weights, W_ℓ its own per application)

A StackPlan lists the blocks with the sizes the glue between them runs at: batch, tokens per
sequence (meta tokens included), width, and the n_meta learnable tokens prepended (Hymba).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from effprof.mechanisms.hybrid.layers import Layer, forms_note
from effprof.registry import MODES


@dataclass(frozen=True, eq=False)
class Residual:
    layer: Layer


@dataclass(frozen=True, eq=False)
class Parallel:
    attention: Layer
    ssm: Layer


@dataclass(frozen=True, eq=False)
class SharedBlocks:
    """The shared block of Zamba: residual blocks at width `d_model` (2·d: it reads [h ; x₀])."""

    blocks: tuple[Residual, ...]
    d_model: int


@dataclass(frozen=True, eq=False)
class Shared:
    shared: SharedBlocks
    application: int


Block = Residual | Parallel | Shared


@dataclass(frozen=True)
class StackPlan:
    blocks: tuple[Block, ...]
    config: dict[str, Any] = field(hash=False)  # the stack's own resolved config (batch, seq_len, d_model, ...)
    n_meta: int = 0

    @property
    def tokens(self) -> int:
        """Positions per sequence every layer sees: the meta tokens, then seq_len real ones."""
        return self.n_meta + self.config["seq_len"]


def residual_blocks(layers: list[Layer]) -> tuple[Residual, ...]:
    return tuple(Residual(layer) for layer in layers)


def layers_of(blocks: tuple[Block, ...]) -> list[Layer]:
    """Every Layer of a stack's blocks, in order (a Shared block's layers once per application)."""
    found: list[Layer] = []
    for block in blocks:
        if isinstance(block, Residual):
            found.append(block.layer)
        elif isinstance(block, Parallel):
            found += [block.attention, block.ssm]
        else:
            found += layers_of(block.shared.blocks)
    return found


def forms(plan: StackPlan) -> str:
    """`effprof explain`'s line for a stack: the form each of its distinct layers runs at this point (layers.forms_note)."""
    return forms_note(layers_of(plan.blocks), MODES)
