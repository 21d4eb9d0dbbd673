"""Module factories for the compiled-variant tests (tests/test_compile.py): tiny, so compiling is cheap.

    tiny_mlp        x -> W2·gelu(W1·x): compiles to one graph
    breaking_mlp    the same with a graph break between the layers (a Python-side print, as real code has)
"""

from __future__ import annotations

import torch
from torch import nn


class TinyMLP(nn.Module):
    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.up, self.down = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x):  # x: (batch, seq_len, d_model)
        return self.down(torch.nn.functional.gelu(self.up(x)))


class BreakingMLP(TinyMLP):
    def forward(self, x):  # x: (batch, seq_len, d_model)
        h = torch.nn.functional.gelu(self.up(x))  # (batch, seq_len, d_ff)
        torch._dynamo.graph_break()  # dynamo cannot trace past this: two graphs
        return self.down(h)


def tiny_mlp(d_model: int = 16, d_ff: int = 32):
    return TinyMLP(d_model, d_ff)


def breaking_mlp(d_model: int = 16, d_ff: int = 32):
    return BreakingMLP(d_model, d_ff)
