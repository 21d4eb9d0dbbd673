"""Calling a factory's module the way effprof calls a mechanism: module(x) -> tensor of x's shape."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ModuleWithInputs(nn.Module):
    """`inner(x, *args, **kwargs)` with the fixed other inputs a factory returned; gives the first output.

    x: (batch, seq_len, d_model) is effprof's input, passed first. The other inputs (masks,
    position embeddings, ids) are moved to x's device, floating ones to x's dtype, on first use.
    """

    def __init__(self, inner: nn.Module, inputs: Any):
        super().__init__()
        if isinstance(inputs, dict):
            self.args, self.kwargs = (), dict(inputs)
        elif isinstance(inputs, (tuple, list)):
            self.args, self.kwargs = tuple(inputs), {}
        else:
            raise TypeError(f"a factory's inputs are a dict of keyword arguments or a tuple of positional ones, not {type(inputs).__name__}")
        self.inner = inner
        self._placed: tuple[Any, Any] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.device, x.dtype)
        if self._placed is None or self._placed[0] != key:
            self._placed = (key, (_place(self.args, x), _place(self.kwargs, x)))
        args, kwargs = self._placed[1]
        return first_tensor(self.inner(x, *args, **kwargs))


def _place(value: Any, x: torch.Tensor) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device=x.device, dtype=x.dtype) if value.is_floating_point() else value.to(device=x.device)
    if isinstance(value, dict):
        return {k: _place(v, x) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_place(v, x) for v in value)
    return value


def first_tensor(output: Any) -> Any:
    """The hidden states of a module's output: itself, or the first element of a tuple / ModelOutput."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "to_tuple"):
        return first_tensor(output.to_tuple())
    if isinstance(output, (tuple, list)) and output:
        return first_tensor(output[0])
    return output
