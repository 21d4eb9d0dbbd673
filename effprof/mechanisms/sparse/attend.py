"""One softmax over the keys a plan gathers for each query group, and the dense masked reference.

    o_i = Σ_{j ∈ P_i} exp(q_iᵀk_j / √d) v_j / Σ_{j ∈ P_i} exp(q_iᵀk_j / √d)

- masked (the reference): the dense n×n scores S = QKᵀ/√d, −∞ outside the pattern, softmax, then P V.
  O(n²·d) FLOPs and O(n²) memory whatever the pattern.
- gathered (the fast forms): for each query group the plan's KeyParts (layout.py) are gathered and one
  softmax runs over their concatenation. Cost ∝ Σ_groups r·L·d: linear in n when the key budget L per group
  is fixed.
- fused (static plans): one gather of every part's keys into one list of ΣL per group, then one call of
  torch's fused attention kernel over all groups, the blocked slots a precomputed −∞ bias (static.py's
  plan_bias): no score matrix in memory. The same pairs as gathered, the same cost order.
Glossary as in layout.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from effprof.mechanisms.sparse.layout import (
    KINDS,
    NEG_INF,
    SELF_PENALTY,
    KeyPart,
    Layout,
    Plan,
    flat_rows,
    from_groups,
    gather_rows,
    to_groups,
)


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
    scores = [part_scores(q, k, part, r) for part, r in zip(parts, rows, strict=False)]
    s = torch.cat(scores, dim=-1) if len(scores) > 1 else scores[0]  # (b, h, G, r, ΣL)
    if keep_top is not None and keep_top < s.shape[-1]:
        threshold = s.detach().topk(keep_top, dim=-1).values[..., -1:]  # (b, h, G, r, 1)
        s = s.masked_fill(s < threshold, NEG_INF)
    p = torch.softmax(s, dim=-1)
    weights = torch.split(p, [part.width for part in parts], dim=-1) if len(parts) > 1 else (p,)
    o = part_values(weights[0], v, parts[0], rows[0])
    for w, part, r in zip(weights[1:], parts[1:], rows[1:], strict=False):
        o = o + part_values(w, v, part, r)
    if with_lse:
        return o, torch.logsumexp(s, dim=-1)
    return o


def run_plan(plan: Plan, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q, k, v: (b, h, n', d), q scaled -> (b, h, n', d)."""
    o = attend(to_groups(q, plan.layout), k, v, plan.parts)
    return from_groups(o, plan.layout)


def fused_plan(layout: Layout, index: torch.Tensor, bias: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q, k, v: (b, h, n', d), q scaled; index (G, ΣL) key positions of every part in order, bias (G, r, ΣL):
    0 where attended, −∞ where blocked -> (b, h, n', d)."""
    b, h, _, d = q.shape
    rows = flat_rows(k, index, 2)  # computed once for keys and values
    keys, values = (gather_rows(t, rows, index.shape).flatten(0, 1) for t in (k, v))  # (b·h, G, ΣL, d)
    queries = to_groups(q, layout).flatten(0, 1)  # (b·h, G, r, d)
    # a 4-D bias: torch's CPU dispatcher sends a 3-D mask with 4-D q to its unfused math path
    o = F.scaled_dot_product_attention(queries, keys, values, attn_mask=bias[None], scale=1.0)  # (b·h, G, r, d)
    return from_groups(o.unflatten(0, (b, h)), layout)


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, blocked: torch.Tensor,
                     penalty: torch.Tensor | None = None) -> torch.Tensor:
    """The reference: dense scores S = QKᵀ (q scaled), −∞ where `blocked` (…, n, n), softmax, P V."""
    s = q @ k.transpose(-2, -1)  # (b, h, n, n)
    s.masked_fill_(blocked, NEG_INF)
    if penalty is not None:
        s.masked_fill_(penalty, SELF_PENALTY)
    return torch.softmax(s, dim=-1) @ v
