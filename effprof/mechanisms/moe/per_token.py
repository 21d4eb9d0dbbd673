"""Decode of a layer that acts on each token alone (an FFN, a token-choice MoE without a capacity limit).

    y_t = F(x_t)   depends on x_t only, so the layer is causal and its decode state is empty:
    init_state(b) = prefill state = ()   (0 bytes);   step(x_t, ()) = (F(x_t), ())
"""

from __future__ import annotations

import torch

from effprof.mechanisms.base import Mechanism

EMPTY_STATE: tuple = ()


class PerTokenMechanism(Mechanism):
    def init_state(self, batch: int) -> tuple:
        return EMPTY_STATE

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        return self(x), EMPTY_STATE

    def step(self, x_t: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        """x_t: (b, 1, d) -> (y_t (b, 1, d), the same empty state)."""
        return self(x_t), state
