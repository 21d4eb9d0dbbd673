"""What every mechanism module provides (DESIGN.md, "A mechanism").

    forward(x)            x: (batch, seq_len, d_model) -> (batch, seq_len, d_model)
    init_state(batch)     the empty decode state           (causal mechanisms)
    prefill(x)            -> (y, state)  state after seq_len tokens
    step(x_t, state)      x_t: (batch, 1, d_model) -> (y_t, new state)

`step` is functional: it returns a new state and leaves the one it was given
untouched, so a decode can be replayed from the same prefill state.
`state` is a tensor or a (nested) tuple/dict of tensors.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

State = Any


class Mechanism(nn.Module):
    config: dict[str, Any]

    def init_state(self, batch: int) -> State:
        raise NotImplementedError(f"{type(self).__name__} has no decode state")

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, State]:
        raise NotImplementedError(f"{type(self).__name__} does not decode")

    def step(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError(f"{type(self).__name__} does not decode")


def state_tensors(state: State) -> list[torch.Tensor]:
    """Every tensor in a (nested) state."""
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, dict):
        state = list(state.values())
    if isinstance(state, (list, tuple)):
        return [t for item in state for t in state_tensors(item)]
    return []


def state_nbytes(state: State) -> int:
    """Bytes held by a decode state, each storage counted once."""
    seen: dict[int, int] = {}
    for t in state_tensors(state):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(b, n, h·d) -> (b, h, n, d)"""
    b, n, _ = x.shape
    return x.view(b, n, n_heads, -1).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(b, h, n, d) -> (b, n, h·d)"""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)
