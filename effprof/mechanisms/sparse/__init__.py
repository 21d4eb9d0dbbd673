"""Sparse attention: static (sliding window, Sparse Transformer, Longformer, BigBird), dynamic
(Reformer LSH, Routing, top-k) and hardware-aligned block-sparse patterns.

Every sparse mechanism here is softmax attention restricted to a pattern P_i, the set of
keys query i attends (causal: P_i ⊆ {j ≤ i}):

    o_i = Σ_{j ∈ P_i} exp(q_iᵀk_j / √d) v_j / Σ_{j ∈ P_i} exp(q_iᵀk_j / √d)

Files: layout.py (query groups, key parts, gathering), attend.py (one softmax over gathered keys, and the
masked reference), static.py (patterns fixed by n, cached), pairs.py (the (query, key) pairs a layer
attends), layer.py (the projections around it), blocks.py (block-level bookkeeping); cost.py models it;
pattern.py turns a mechanism's pattern into plain arrays for rendering.
"""

from effprof.mechanisms.sparse import (  # noqa: F401
    bigbird,
    block_sparse,
    longformer,
    reformer,
    routing,
    sliding_window,
    sparse_transformer,
    topk_attention,
)
