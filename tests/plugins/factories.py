"""Module factories for `--module tests.plugins.factories:NAME` (tests/test_modules.py), good and bad."""

from __future__ import annotations

import torch
from torch import nn

from tests.plugins.short_conv import ShortConv


def mlp(d_model: int, d_ff: int = 64, bias: bool = True, activation: str = "gelu", scale: float = 1.0) -> nn.Module:
    """A two-layer MLP: the simplest module with its own keys (an int, a bool, a str, a float)."""
    act = {"gelu": nn.GELU(), "relu": nn.ReLU()}[activation]
    layers = nn.Sequential(nn.Linear(d_model, d_ff, bias=bias), act, nn.Linear(d_ff, d_model, bias=bias))
    if scale != 1.0:
        layers.append(Scale(scale))
    return layers


class Scale(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class MaskedAttention(nn.Module):
    """Multi-head attention with an explicit mask input (True: attended); returns (output, None) like many layers."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)  # each (b, h, n, d/h)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, n, d)), None


def masked_attention(d_model: int, seq_len: int, n_heads: int = 2):
    """(module, inputs): the mask is an input beside x, and the output a tuple."""
    mask = torch.ones(seq_len, seq_len, dtype=torch.bool).tril()  # causal
    return MaskedAttention(d_model, n_heads), {"mask": mask}


def short_conv(d_model: int) -> nn.Module:
    """A module with the step contract (init_state, prefill, step): decode mode applies."""
    return ShortConv(d_model)


def large_fails(d_model: int, seq_len: int, limit: int = 32) -> nn.Module:
    """Builds at small sizes, raises above `limit` tokens: an error record inside a sweep."""
    if seq_len > limit:
        raise RuntimeError(f"this layer supports at most {limit} tokens")
    return nn.Linear(d_model, d_model)


def raises(d_model: int) -> nn.Module:
    raise ValueError("no such layer in this checkpoint")


def wrong_shape(d_model: int) -> nn.Module:
    return nn.Linear(d_model, d_model + 1)


def not_a_module(d_model: int):
    return "a string"


def tuple_output(d_model: int) -> nn.Module:
    return MaskedAttention(d_model, 2)  # needs a mask, returns a tuple: must be given as (module, inputs)


def inputs_do_not_fit(d_model: int, seq_len: int):
    return MaskedAttention(d_model, 2), {"mask": torch.ones(seq_len + 3, seq_len + 3, dtype=torch.bool).tril()}


def needs_a_value(d_model: int, rank: int) -> nn.Module:
    return nn.Linear(d_model, d_model)


def object_default(d_model: int, layer: nn.Module = nn.Identity()) -> nn.Module:  # noqa: B008  (the object default is the point)
    return layer


NOT_CALLABLE = 3
