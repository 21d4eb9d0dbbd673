"""How a sparse layer arranges queries in groups and names the keys each group attends; gathering them.

A `Plan` is a `Layout` (queries in groups of r: consecutive blocks, blocks of one residue class, or an
explicit order such as sorted buckets) and one or more `KeyPart`s. A KeyPart's index has one of three shapes
(after optional leading (b, h) dims):
    shared (L,)        one key list for every query       e.g. global tokens, summary columns
    group  (G, L)      one key list per query group       e.g. a band of keys per query block
    row    (G, r, L)   one key list per query              e.g. a per-query local window
and `blocked` (G, r, L) marks the slots a query does not attend (outside its pattern, or padding). Parts of
one plan are disjoint, so one softmax over their concatenation is exact (attend.py).

Glossary: b batch, n seq_len (n' padded to whole groups), h n_heads, d head_dim, G query groups,
r queries per group, L keys per group (or per query).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

NEG_INF = float("-inf")
SELF_PENALTY = -1e4  # shared-QK attention: a token attends itself only when nothing else is there (Reformer)
KINDS = {"shared": 1, "group": 2, "row": 3}  # index dims without the optional leading (b, h)


@dataclass(frozen=True)
class KeyPart:
    kind: str  # "shared" | "group" | "row"
    index: torch.Tensor  # key positions, long; shape by kind (see module docstring), optional leading (b, h)
    blocked: torch.Tensor | tuple[torch.Tensor, ...]  # bool, broadcastable to (b, h, G, r, L): True = not attended
    penalty: torch.Tensor | None = None  # bool: slots whose score is set to SELF_PENALTY (attended only as a last resort)
    bias: torch.Tensor | None = None  # float added to the scores (Reformer's −log N_ij)

    @property
    def width(self) -> int:
        return self.index.shape[-1]


@dataclass(frozen=True)
class Layout:
    """How queries are arranged in groups: (G, r) positions.

    interleave δ, rows r: positions ρ + δ·(u·r + i) for residue ρ < δ, block u, row i < r
    (δ = 1: consecutive blocks of r). `order`: explicit (b, h, G, r) positions instead.
    """

    length: int  # padded n', a multiple of δ·r
    rows: int
    interleave: int = 1
    order: torch.Tensor | None = None

    @property
    def groups(self) -> int:
        return self.length // self.rows

    def positions(self) -> np.ndarray:
        """(G, r) query positions of a static layout."""
        per_residue = self.length // self.interleave
        u = np.arange(per_residue).reshape(-1, self.rows)  # (G/δ, r) index within a residue class
        return (np.arange(self.interleave)[:, None, None] + self.interleave * u[None]).reshape(self.groups, self.rows)


@dataclass(frozen=True)
class Plan:
    layout: Layout
    parts: tuple[KeyPart, ...]


def gather_tokens(x: torch.Tensor, index: torch.Tensor, inner_dims: int) -> torch.Tensor:
    """x: (b, h, n, d), index: `inner_dims` dims of positions, optionally after (b, h) -> (b, h, …, d)."""
    return gather_rows(x, flat_rows(x, index, inner_dims), index.shape[-inner_dims:])


def flat_rows(x: torch.Tensor, index: torch.Tensor, inner_dims: int) -> torch.Tensor:
    """Row numbers in x.reshape(b·h·n, d) of the positions `index` for every (b, h): (b·h·|index|,).

    Head (β, η) reads row (β·h + η)·n + position: one row gather serves every head at once.
    """
    b, h, n, _ = x.shape
    if index.dim() == inner_dims:
        index = index[None, None]
    offsets = (torch.arange(b * h, device=x.device) * n).view(b, h, *([1] * inner_dims))  # (b, h, 1, …)
    return (index + offsets).reshape(-1)


def gather_rows(x: torch.Tensor, rows: torch.Tensor, inner: Sequence[int]) -> torch.Tensor:
    """x: (b, h, n, d), rows from flat_rows -> (b, h, *inner, d)."""
    return x.reshape(-1, x.shape[-1]).index_select(0, rows).view(*x.shape[:2], *inner, x.shape[-1])


def to_groups(x: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(b, h, n', d) -> (b, h, G, r, d) in the layout's order."""
    b, h, n, d = x.shape
    if layout.order is not None:
        return gather_tokens(x, layout.order, 2)
    if layout.interleave == 1:
        return x.view(b, h, layout.groups, layout.rows, d)
    δ = layout.interleave
    return x.view(b, h, n // δ, δ, d).transpose(2, 3).reshape(b, h, layout.groups, layout.rows, d)


def from_groups(o: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(b, h, G, r, d) -> (b, h, n', d), the inverse of to_groups."""
    b, h, _, _, d = o.shape
    n = layout.length
    if layout.order is not None:
        order = layout.order.reshape(*layout.order.shape[:2], n, 1).expand(b, h, n, d)
        return o.new_empty(b, h, n, d).scatter(2, order, o.reshape(b, h, n, d))
    if layout.interleave == 1:
        return o.reshape(b, h, n, d)
    δ = layout.interleave
    return o.reshape(b, h, δ, n // δ, d).transpose(2, 3).reshape(b, h, n, d)
