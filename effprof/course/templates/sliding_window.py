"""Week 16, project 2 (week 9): a sparse pattern, causal sliding-window attention.

    effprof course 9 --template > my_window.py
    effprof course 9 --check my_window.py:build     # checked against effprof's sliding_window

Equations (week 9): each query i attends the `window` = w most recent keys, itself included,

    P_i = { j : i − w < j ≤ i, j ≥ 0 }
    o_i = Σ_{j∈P_i} exp(q_iᵀk_j / √d) v_j / Σ_{j∈P_i} exp(q_iᵀk_j / √d)

Glossary: b batch, n seq_len, h n_heads, d head_dim, w window.

Weights: build(config, weights) receives the reference config (config["window"] is w) and its state_dict():
    q_proj.weight, k_proj.weight, v_proj.weight: (h·d, d_model)    o_proj.weight: (d_model, h·d)

The checker wants: forward(x) (b, n, d_model) -> (b, n, d_model), causal; init_state(b); prefill(x) -> (y, state);
step(x_t, state) -> (y_t, state). The state holds the last w − 1 keys and values, {"key": (b, h, ≤w−1, d),
"value": (b, h, ≤w−1, d)}; FLOPs must grow linearly in n: never build the n×n score matrix (masking a dense matrix
is still dense). Hint: pad k, v with w − 1 zeros in front, then Tensor.unfold gives each query its w keys.
"""

import torch
from torch import nn


class MySlidingWindow(nn.Module):
    def __init__(self, config: dict, weights: dict):
        super().__init__()
        self.n_heads, self.head_dim, self.window = config["n_heads"], config["head_dim"], config["window"]
        inner = self.n_heads * self.head_dim
        self.q_proj = nn.Linear(config["d_model"], inner, bias=False)
        self.k_proj = nn.Linear(config["d_model"], inner, bias=False)
        self.v_proj = nn.Linear(config["d_model"], inner, bias=False)
        self.o_proj = nn.Linear(inner, config["d_model"], bias=False)
        self.load_state_dict(weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, n, d_model) -> (b, n, d_model)"""
        raise NotImplementedError("TODO: q, k, v (b, h, n, d); each query's w keys (b, h, n, w, d); masked softmax; o_proj")

    def init_state(self, batch: int) -> dict:
        raise NotImplementedError("TODO: empty key and value caches (b, h, 0, d)")

    def prefill(self, x: torch.Tensor) -> tuple:
        raise NotImplementedError("TODO: (forward(x), the last w − 1 keys and values)")

    def step(self, x_t: torch.Tensor, state: dict) -> tuple:
        raise NotImplementedError("TODO: attend the cached keys + this token's; keep the last w − 1")


def build(config: dict, weights: dict) -> nn.Module:
    return MySlidingWindow(config, weights)
