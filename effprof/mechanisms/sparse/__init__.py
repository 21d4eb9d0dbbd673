"""Sparse attention: static (sliding window, Sparse Transformer, Longformer, BigBird), dynamic
(Reformer LSH, Routing, top-k) and hardware-aligned block-sparse patterns.

core.py gathers keys per query group and runs one softmax over them; cost.py models it;
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
