"""Sorting tokens by bucket (Reformer's LSH buckets, Routing's clusters), causally.

Tokens are sorted by the pair (bucket, position): one sort of the integer key

    key_j = bucket_j · n + j

so within a bucket the order is the positional order, and a token's rank in its bucket
(the number of earlier tokens sharing it) depends only on the tokens before it.

Glossary: n tokens (padded), β buckets; every tensor below has optional leading dims.
"""

from __future__ import annotations

import torch


def sort_by_bucket(bucket: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """bucket: (…, n) ints -> sorted keys bucket·n + position (…, n) and the permutation (…, n)."""
    n = bucket.shape[-1]
    key = bucket * n + torch.arange(n, device=bucket.device)  # (…, n)
    return torch.sort(key, dim=-1)


def bucket_starts(sorted_key: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
    """Index in the sorted order where each of `buckets` (…, k) begins: (…, k)."""
    n = sorted_key.shape[-1]
    return torch.searchsorted(sorted_key, buckets * n)


def ranks_in_bucket(bucket: torch.Tensor, n_buckets: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sort by (bucket, position): perm, the bucket and the rank in bucket of each sorted slot, and the counts.

    bucket: (…, n) -> perm (…, n), sorted_bucket (…, n), sorted_rank (…, n), count (…, β).
    """
    sorted_key, perm = sort_by_bucket(bucket)
    sorted_bucket = bucket.gather(-1, perm)
    all_buckets = torch.arange(n_buckets + 1, device=bucket.device).expand(*bucket.shape[:-1], n_buckets + 1)
    starts = bucket_starts(sorted_key, all_buckets)  # (…, β + 1): the last is n
    sorted_rank = torch.arange(bucket.shape[-1], device=bucket.device) - starts.gather(-1, sorted_bucket)
    return perm, sorted_bucket, sorted_rank, starts[..., 1:] - starts[..., :-1]
