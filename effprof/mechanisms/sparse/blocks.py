"""Block selection by compressed-block scores (NSA-style), shared by block_sparse and topk_attention.

Positions are cut into blocks of B. Keys and queries of a block are compressed to their means,
k̄_J = mean_{j ∈ J} k_j and q̄_I = mean_{i ∈ I} q_i. Query block I picks the c key blocks that
score highest against the summary of the block before it:

    s_IJ = q̄_{I−1}ᵀ k̄_J / √d    for the blocks J eligible for I (wholly in the past), −∞ otherwise
    S_I  = top-c_J s_IJ                                                  (one choice per query block)

The summary q̄_{I−1} is complete before block I starts, so every query of block I shares the
choice without looking at later tokens: causal, and decode (which keeps the block means and
makes the choice when a block completes) selects exactly as the forward pass. Sharing the
choice lets a whole block of queries gather its keys once, as one (B × L) product.
The scores only choose (no gradient flows through them); scoring costs 2·m²·d.

Glossary: b batch, n seq_len (n' padded to whole blocks), h n_heads, d head_dim, B block_size,
m = n'/B blocks, c n_selected_blocks.
"""

from __future__ import annotations

import torch

from effprof.config import declare_key
from effprof.mechanisms.sparse.layout import NEG_INF
from effprof.runtime import counting as count_only

declare_key("n_selected_blocks", int, "key blocks each query block selects by compressed-block scores (block_sparse, topk_attention)")


def block_means(x: torch.Tensor, block: int) -> torch.Tensor:
    """x: (b, h, n', d) with n' a multiple of B -> block means (b, h, m, d)."""
    b, h, n, d = x.shape
    return x.reshape(b, h, n // block, block, d).mean(dim=-2)


def select_blocks(q: torch.Tensor, k: torch.Tensor, block: int, ineligible: torch.Tensor, n_selected: int) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k: (b, h, n', d) (q scaled), ineligible: (m, m) -> chosen blocks and unusable picks, (b, h, m, c) each.

    An unusable pick (fewer than c eligible blocks) names block 0; the caller masks it.
    """
    q_mean, k_mean = block_means(q.detach(), block), block_means(k.detach(), block)  # (b, h, m, d)
    s = q_mean @ k_mean.transpose(-2, -1)  # (b, h, m, m): row I scores block I's own summary …
    s = torch.cat([torch.full_like(s[:, :, :1], NEG_INF), s[:, :, :-1]], dim=2)  # … so shift: row I uses q̄_{I−1}
    s = s.masked_fill(ineligible, NEG_INF)
    values, chosen = s.topk(min(n_selected, s.shape[-1]), dim=-1)
    unusable = values.isinf()
    return chosen.masked_fill(unusable, 0), unusable


def block_positions(chosen: torch.Tensor, block: int) -> torch.Tensor:
    """Block indices (…, c) -> their token positions (…, c·B)."""
    positions = (chosen * block).unsqueeze(-1) + torch.arange(block, device=chosen.device)  # (…, c, B)
    return positions.flatten(-2)


def chosen_tokens(chosen: torch.Tensor, unusable: torch.Tensor, block: int, n: int) -> torch.Tensor:
    """(b, h, m, c) picks -> (b, h, n, n) True where key j lies in a block chosen for query i's block."""
    b, h, m, _ = chosen.shape
    # unusable picks go to a spare column m, dropped after
    picked = torch.zeros(b, h, m, m + 1, dtype=torch.bool, device=chosen.device).scatter(-1, chosen.masked_fill(unusable, m), True)
    return picked[..., :m].repeat_interleave(block, dim=-1).repeat_interleave(block, dim=-2)[:, :, :n, :n]


def decode_choice(block_queries: torch.Tensor, k_means: torch.Tensor, eligible: int, n_selected: int) -> torch.Tensor:
    """The choice for the block after a completed one: its queries (b, h, B, d), the key means so far
    (b, h, J, d), the first `eligible` usable -> (b, h, c) block indices, −1 where none."""
    b, h = block_queries.shape[:2]
    chosen = torch.full((b, h, n_selected), -1, dtype=torch.long, device=block_queries.device)
    if eligible == 0:
        return chosen
    s = block_queries.mean(dim=2, keepdim=True) @ k_means[:, :, :eligible].transpose(-2, -1)  # (b, h, 1, e)
    picks = s.topk(min(n_selected, eligible), dim=-1).indices[:, :, 0]  # (b, h, ≤ c)
    return torch.cat([picks, chosen[..., picks.shape[-1]:]], dim=-1)


def chosen_positions(chosen: torch.Tensor, block: int, usable: int) -> torch.Tensor:
    """Decode: (b, h, c) block indices (−1: none) -> token positions of the first `usable` (b, h, c'·B).

    usable = min(c, eligible blocks): decode_choice fills that many, the same in every head (eligibility depends
    on the position only), so the count is known without reading the picks (count-only measurement has none);
    a real run checks it against the picks.
    """
    filled = (chosen[0, 0] >= 0).sum()  # the picks that are not −1 (one head: all agree): ()
    if not count_only.active() and int(filled) != usable:
        raise AssertionError(f"decode choice holds {int(filled)} picks, {usable} expected")
    return block_positions(chosen[..., :usable], block)


def gather_keys(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x: (b, h, n, d), positions (b, h, L) -> (b, h, L, d)."""
    return x.gather(2, positions.unsqueeze(-1).expand(-1, -1, -1, x.shape[-1]))
