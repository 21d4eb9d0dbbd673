"""Shared machinery of the sparse family: gather keys per query group, attend over them.

Every sparse mechanism here is softmax attention restricted to a pattern P_i, the set of
keys query i attends (causal: P_i ⊆ {j ≤ i}):

    o_i = Σ_{j ∈ P_i} exp(q_iᵀk_j / √d) v_j / Σ_{j ∈ P_i} exp(q_iᵀk_j / √d)

Two forms compute it:
- masked (the reference): the dense n×n scores S = QKᵀ/√d, −∞ outside the pattern, softmax,
  then P V. O(n²·d) FLOPs and O(n²) memory whatever the pattern.
- gathered (the fast forms): queries are arranged in groups of r (a `Layout`: consecutive
  blocks, blocks of one residue class, or an explicit order such as sorted buckets); for each
  group the plan lists key positions in one or more `KeyPart`s, the keys and values are
  gathered, and one softmax runs over the concatenated parts. Cost ∝ Σ_groups r·L·d: linear
  in n when the key budget L per group is fixed.

A KeyPart's index has one of three shapes (after optional leading (b, h) dims):
    shared (L,)        one key list for every query       e.g. global tokens, summary columns
    group  (G, L)      one key list per query group       e.g. a band of keys per query block
    row    (G, r, L)   one key list per query              e.g. a per-query local window
and `blocked` (G, r, L) marks the slots a query does not attend (outside its pattern, or
padding). Parts of one plan are disjoint, so the concatenated softmax is exact.

Glossary: b batch, n seq_len (n' padded to whole groups), h n_heads, d head_dim,
G query groups, r queries per group, L keys per group (or per query).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from effprof.mechanisms.base import Mechanism, merge_heads, split_heads

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


# ----------------------------------------------------------------------------- gathering


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


# ----------------------------------------------------------------------------- attention


def part_rows(k: torch.Tensor, part: KeyPart) -> torch.Tensor:
    """The part's key rows in the flattened (b·h·n', d) keys and values (computed once for both)."""
    return flat_rows(k, part.index, KINDS[part.kind])


def part_scores(q: torch.Tensor, k: torch.Tensor, part: KeyPart, rows: torch.Tensor | None = None) -> torch.Tensor:
    """q: (b, h, G, r, d) (already ·1/√d), k: (b, h, n', d) -> masked scores (b, h, G, r, L)."""
    b, h, G, r, d = q.shape
    rows = part_rows(k, part) if rows is None else rows
    keys = gather_rows(k, rows, part.index.shape[-KINDS[part.kind]:])
    if part.kind == "shared":  # one key list: a plain (G·r × d)(d × L) product, no copies per group
        s = (q.reshape(b, h, G * r, d) @ keys.transpose(-2, -1)).view(b, h, G, r, -1)
    elif part.kind == "group":
        s = q @ keys.transpose(-2, -1)  # (b, h, G, r, d)(b, h, G, d, L)
    else:
        s = (q.unsqueeze(-2) @ keys.transpose(-2, -1)).squeeze(-2)  # (b, h, G, r, 1, d)(b, h, G, r, d, L)
    # in place: the product's output is not saved for backward
    if part.bias is not None:
        s.add_(part.bias)
    for blocked in part.blocked if isinstance(part.blocked, tuple) else (part.blocked,):
        s.masked_fill_(blocked, NEG_INF)
    if part.penalty is not None:
        s.masked_fill_(part.penalty, SELF_PENALTY)
    return s


def part_values(p: torch.Tensor, v: torch.Tensor, part: KeyPart, rows: torch.Tensor) -> torch.Tensor:
    """p: (b, h, G, r, L) weights of one part -> Σ_j p_j v_j: (b, h, G, r, d)."""
    b, h, G, r, _ = p.shape
    values = gather_rows(v, rows, part.index.shape[-KINDS[part.kind]:])
    if part.kind == "shared":
        return (p.reshape(b, h, G * r, -1) @ values).view(b, h, G, r, -1)
    if part.kind == "group":
        return p @ values
    return (p.unsqueeze(-2) @ values).squeeze(-2)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, parts: Sequence[KeyPart], with_lse: bool = False,
           keep_top: int | None = None):
    """One softmax over the keys of every part; q: (b, h, G, r, d) scaled -> o: (b, h, G, r, d) [, lse (b, h, G, r)].

    keep_top=k: each query keeps only its k best scores (the k-th is the threshold), the rest −∞.
    """
    rows = [part_rows(k, part) for part in parts]
    scores = [part_scores(q, k, part, r) for part, r in zip(parts, rows)]
    s = torch.cat(scores, dim=-1) if len(scores) > 1 else scores[0]  # (b, h, G, r, ΣL)
    if keep_top is not None and keep_top < s.shape[-1]:
        threshold = s.detach().topk(keep_top, dim=-1).values[..., -1:]  # (b, h, G, r, 1)
        s = s.masked_fill(s < threshold, NEG_INF)
    p = torch.softmax(s, dim=-1)
    weights = torch.split(p, [part.width for part in parts], dim=-1) if len(parts) > 1 else (p,)
    o = part_values(weights[0], v, parts[0], rows[0])
    for w, part, r in zip(weights[1:], parts[1:], rows[1:]):
        o = o + part_values(w, v, part, r)
    if with_lse:
        return o, torch.logsumexp(s, dim=-1)
    return o


def run_plan(plan: Plan, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q, k, v: (b, h, n', d), q scaled -> (b, h, n', d)."""
    o = attend(to_groups(q, plan.layout), k, v, plan.parts)
    return from_groups(o, plan.layout)


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, blocked: torch.Tensor,
                     penalty: torch.Tensor | None = None) -> torch.Tensor:
    """The reference: dense scores S = QKᵀ (q scaled), −∞ where `blocked` (…, n, n), softmax, P V."""
    s = q @ k.transpose(-2, -1)  # (b, h, n, n)
    s.masked_fill_(blocked, NEG_INF)
    if penalty is not None:
        s.masked_fill_(penalty, SELF_PENALTY)
    return torch.softmax(s, dim=-1) @ v


# ----------------------------------------------------------------------------- static plans


def padded(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def pad_tokens(x: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad (b, h, n, d) to `length` tokens; padded keys come after every real query, so causality masks them."""
    return F.pad(x, (0, 0, 0, length - x.shape[2])) if length > x.shape[2] else x


@dataclass(frozen=True)
class StaticPart:
    kind: str
    index: np.ndarray
    blocked: np.ndarray


def static_plan(build: Callable[..., tuple[Layout, list[StaticPart]]], *args: Any, device: str | torch.device = "cpu") -> Plan:
    """A pattern fixed by (n, config): built once in numpy and cached per device.

    Static layouts are index bookkeeping done before the kernel runs (block-sparse kernels take a
    precomputed layout), so they carry no floating-point work and are not re-derived per call.
    """
    return _static_plan(build, args, str(device))


@functools.lru_cache(maxsize=64)
def _static_plan(build: Callable, args: tuple, device: str) -> Plan:
    layout, parts = build(*args)
    return Plan(layout, tuple(
        KeyPart(p.kind, torch.as_tensor(np.maximum(p.index, 0).copy(), dtype=torch.long, device=device),
                torch.as_tensor(np.array(p.blocked, dtype=bool), device=device))
        for p in parts
    ))


def static_tensor(build: Callable[..., np.ndarray], *args: Any, device: str | torch.device = "cpu", dtype=torch.bool) -> torch.Tensor:
    """A cached tensor fixed by (n, config), e.g. the dense mask of a static pattern."""
    return _static_tensor(build, args, str(device), dtype)


@functools.lru_cache(maxsize=32)
def _static_tensor(build: Callable, args: tuple, device: str, dtype) -> torch.Tensor:
    return torch.as_tensor(build(*args), device=device).to(dtype)


def plan_pairs(plan: Plan, n: int, batch_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(query, key) positions a plan attends for real queries (< n), union over heads: (rows, cols)."""
    layout = plan.layout
    if layout.order is not None:
        q_pos = layout.order[batch_index].cpu().numpy()  # (h, G, r)
    else:
        q_pos = layout.positions()[None]  # (1, G, r)
    rows, cols = [], []
    for part in plan.parts:
        index = part.index.cpu().numpy()
        if index.ndim > KINDS[part.kind]:
            index = index[batch_index]
        else:
            index = index[None]
        blocked = np.zeros((), dtype=bool)
        for mask in part.blocked if isinstance(part.blocked, tuple) else (part.blocked,):
            mask = mask.cpu().numpy()
            mask = mask[batch_index if mask.shape[0] > 1 else 0] if mask.ndim > 3 else mask[None]
            blocked = blocked | mask
        if part.kind == "shared":
            keys = index[:, None, None, :]
        elif part.kind == "group":
            keys = index[:, :, None, :]
        else:
            keys = index
        queries = q_pos[..., None]
        keys, queries, blocked = np.broadcast_arrays(keys, queries, blocked)
        keep = ~blocked & (queries < n)
        rows.append(queries[keep])
        cols.append(keys[keep])
    pairs = unique_sorted(np.concatenate(rows).astype(np.int64) * n + np.concatenate(cols))
    return pairs // n, pairs % n


def unique_sorted(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort and a comparison; np.unique hashes, slowly, at millions of ints)."""
    x = np.sort(x)
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if len(x) else x


def dense_pairs(blocked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of a dense (n, n) blocked mask (small n only, for tests)."""
    rows, cols = np.nonzero(~blocked)
    return rows, cols


# ----------------------------------------------------------------------------- the layer


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
    """A sparse mechanism whose fast form is a static Plan fixed by (n, config): it defines `plan(n, device)`."""

    def plan(self, n: int, device: torch.device) -> "Plan":  # pragma: no cover - interface
        raise NotImplementedError

    def fast(self, q, k, v):
        n = q.shape[2]
        plan = self.plan(n, q.device)
        length = plan.layout.length
        return run_plan(plan, pad_tokens(q, length), pad_tokens(k, length), pad_tokens(v, length))[:, :, :n]

    def pairs(self, q, k):
        return plan_pairs(self.plan(q.shape[2], q.device), q.shape[2])


def pattern_lists(name: str, config: dict[str, Any], seed: int = 0) -> list[torch.Tensor]:
    """The spec's `pattern`: per-query key index lists of mechanism `name` at config (batch 1)."""
    rows, cols = pattern_of(name, config, seed)
    n = config["seq_len"]
    counts = np.bincount(rows, minlength=n)
    return list(torch.split(torch.as_tensor(cols, dtype=torch.long), counts.tolist()))


def pattern_of(name: str, config: dict[str, Any], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pattern at config: built with a fixed seed, on a fixed random input for dynamic patterns."""
    from effprof.registry import build

    config = {**config, "batch": 1, "device": "cpu", "dtype": "float32"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build(name, **config).eval()
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, config["seq_len"], config["d_model"], generator=generator)
    return module.pattern(x)
