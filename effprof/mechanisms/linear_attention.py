"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs").

Notation (the roadmap's, week 7): replace exp(q_tᵀk_i) by a kernel φ(q_t)φ(k_i)ᵀ.

    Standard:  o_t = Σ_{i≤t} exp(q_tᵀ k_i) v_i / Σ_{i≤t} exp(q_tᵀ k_i)
    Linear:    o_t = φ(q_t) Σ_{i≤t} φ(k_i)ᵀ v_i / φ(q_t) Σ_{i≤t} φ(k_i)ᵀ
    Recurrent: S_t = S_{t-1} + φ(k_t)ᵀ v_t          S: (D × d) per head
               z_t = z_{t-1} + φ(k_t)ᵀ              z: (D,)    per head
               o_t = φ(q_t) S_t / φ(q_t) z_t

Glossary: b batch, n seq_len, h n_heads, d head_dim, D feature dimension of φ,
C chunk_size.

Feature maps φ (config `feature_map`):
- elu1:      φ(x) = elu(x) + 1                                        D = d
- relu:      φ(x) = max(x, 0)                                         D = d
- performer: FAVOR+ positive random features,
             φ(x) = exp(ωᵀx̃ − ‖x̃‖²/2) / √m,  x̃ = x / d^¼,  ω ~ N(0, I)  D = m = n_features
             so that φ(q)φ(k)ᵀ ≈ exp(qᵀk/√d), the softmax kernel, in expectation.
             In fp32 the exponent is shifted by constants that cancel in φ(q)S / φ(q)z: each query's
             row max, and for keys one constant per head, c_h − 40 with c_h = max_j ‖ω_j‖²/2 ≥ ωᵀx̃ − ‖x̃‖²/2
             for every x̃ (so a key feature is at most e^40/√m: no overflow, 40 nats of headroom
             against underflow). The denominator's guard is the smallest normal float, not 1e-6: φ(q)z
             is positive and legitimately tiny at large input scale, and an absolute 1e-6 swamped it
             (66% error at ×4 input before). Matches the exact ratio to ~1e-6 up to ×4 input, ~1e-3 at ×6,
             ~7e-2 at ×8, where queries and keys, stabilised apart, underflow (tests/test_mechanisms.py).
- taylor:    2nd-order Taylor expansion of exp: φ(x) = [1, x̃, vec(x̃x̃ᵀ)/√2]
             so that φ(q)φ(k)ᵀ = 1 + q̃ᵀk̃ + (q̃ᵀk̃)²/2                    D = 1 + d + d²

Forms (config `impl`), all the same function:
- parallel:  A = tril(φ(Q)φ(K)ᵀ), o = A V / A 1. The reference; O(n²·(D + d)) FLOPs.
- recurrent: the token loop over S_t, z_t above. O(n·D·d) FLOPs, n Python steps.
- chunked:   split into chunks of C tokens; within a chunk use the parallel form,
             across chunks carry S and z: for chunk c with state S_c (sum over earlier chunks)
                 O_c = tril(φ(Q_c)φ(K_c)ᵀ) V_c + φ(Q_c) S_c,    S_{c+1} = S_c + φ(K_c)ᵀ V_c
             computed for all chunks at once (a cumulative sum over chunk states):
             O(n·C·(D + d) + n·D·d) FLOPs, no loop over tokens.

Decode keeps S and z: h·D·(d + 1) numbers per sequence, constant in n.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from effprof.config import ConfigError
from effprof.cost_model import Tally, dtype_bytes, mean_over_decode
from effprof.mechanisms.base import Mechanism, merge_heads, split_heads
from effprof.registry import Claim, Cost, MeasureHints, MechanismSpec, Paper, TestHooks, register

IMPLS = ("parallel", "recurrent", "chunked")
FEATURE_MAPS = ("elu1", "relu", "performer", "taylor")
EPS = 1e-6  # keeps φ(q)z away from 0 (relu features can all be 0)
POSITIVE_EPS = torch.finfo(torch.float32).tiny  # performer: φ > 0, the guard only catches a full underflow
KEY_HEADROOM = 40.0  # performer keys: the largest possible log-feature is shifted to this


def feature_dim(config: dict[str, Any]) -> int:
    d = config["head_dim"]
    return {"elu1": d, "relu": d, "performer": config["n_features"], "taylor": 1 + d + d * d}[config["feature_map"]]


class FeatureMap(nn.Module):
    """φ applied to the last dimension: (..., d) -> (..., D)."""

    def __init__(self, kind: str, head_dim: int, n_features: int, n_heads: int):
        super().__init__()
        self.kind, self.head_dim = kind, head_dim
        if kind == "performer":
            generator = torch.Generator().manual_seed(0)
            # ω: (h, d, m), one draw per head, fixed (a buffer, not a parameter)
            self.register_buffer("omega", torch.randn(n_heads, head_dim, n_features, generator=generator))
            # c_h − 40 per head, c_h = max_j ‖ω_j‖²/2 ≥ ωᵀx̃ − ‖x̃‖²/2 for every x̃: the same for every key, so it cancels
            bound = 0.5 * self.omega.pow(2).sum(dim=1).amax(dim=-1)  # c_h: (h,)
            self.register_buffer("key_offset", (bound - KEY_HEADROOM)[:, None, None])  # (h, 1, 1)
        self.eps = POSITIVE_EPS if kind == "performer" else EPS

    def forward(self, x: torch.Tensor, is_query: bool) -> torch.Tensor:
        """x: (b, h, n, d) -> φ(x): (b, h, n, D)"""
        if self.kind == "elu1":
            return F.elu(x) + 1
        if self.kind == "relu":
            return F.relu(x)
        x = x * self.head_dim**-0.25  # x̃ = x / d^¼
        if self.kind == "taylor":
            outer = (x[..., :, None] * x[..., None, :]).flatten(-2) * (0.5**0.5)  # vec(x̃x̃ᵀ)/√2: (…, d²)
            return torch.cat([torch.ones_like(x[..., :1]), x, outer], dim=-1)
        projected = x @ self.omega[None]  # ωᵀx̃: (b, h, n, m)
        half_norm = 0.5 * x.pow(2).sum(dim=-1, keepdim=True)  # ‖x̃‖²/2: (b, h, n, 1)
        if is_query:  # a per-query constant cancels in φ(q)S / φ(q)z: subtract the row max for stability
            log_phi = projected - half_norm
            log_phi = log_phi - log_phi.amax(dim=-1, keepdim=True).detach()
        else:  # one constant per head for every key: at most KEY_HEADROOM
            log_phi = projected - (half_norm + self.key_offset)
        return torch.exp(log_phi) * self.omega.shape[-1] ** -0.5


class LinearAttention(Mechanism):
    def __init__(self, d_model: int, n_heads: int, head_dim: int, feature_map: str, n_features: int, impl: str, chunk_size: int):
        super().__init__()
        self.n_heads, self.head_dim, self.impl, self.chunk_size = n_heads, head_dim, impl, chunk_size
        self.q_proj = nn.Linear(d_model, n_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(d_model, n_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(d_model, n_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(n_heads * head_dim, d_model, bias=False)
        self.phi = FeatureMap(feature_map, head_dim, n_features, n_heads)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q = self.phi(split_heads(self.q_proj(x), self.n_heads), is_query=True)  # φ(Q): (b, h, n, D)
        k = self.phi(split_heads(self.k_proj(x), self.n_heads), is_query=False)  # φ(K): (b, h, n, D)
        v = split_heads(self.v_proj(x), self.n_heads)  # V: (b, h, n, d)
        return q, k, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._features(x)
        form = {"parallel": parallel_form, "recurrent": recurrent_form, "chunked": chunked_form}[self.impl]
        o = form(q, k, v, self.chunk_size, self.phi.eps) if self.impl == "chunked" else form(q, k, v, self.phi.eps)
        return self.o_proj(merge_heads(o))

    def init_state(self, batch: int) -> dict[str, torch.Tensor]:
        w = self.v_proj.weight
        D = self.phi(w.new_zeros(1, self.n_heads, 1, self.head_dim), is_query=False).shape[-1]
        return {"S": w.new_zeros(batch, self.n_heads, D, self.head_dim), "z": w.new_zeros(batch, self.n_heads, D)}

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        q, k, v = self._features(x)
        form = {"parallel": parallel_form, "recurrent": recurrent_form, "chunked": chunked_form}[self.impl]
        o = form(q, k, v, self.chunk_size, self.phi.eps) if self.impl == "chunked" else form(q, k, v, self.phi.eps)
        state = {"S": k.transpose(-2, -1) @ v, "z": k.sum(dim=2)}  # S_n = Σ φ(k_i)ᵀ v_i, z_n = Σ φ(k_i)ᵀ
        return self.o_proj(merge_heads(o)), state

    def step(self, x_t: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        q, k, v = self._features(x_t)  # (b, h, 1, D), (b, h, 1, D), (b, h, 1, d)
        S = state["S"] + k.transpose(-2, -1) @ v  # S_t = S_{t-1} + φ(k_t)ᵀ v_t
        z = state["z"] + k[:, :, 0]  # z_t = z_{t-1} + φ(k_t)ᵀ
        num = q @ S  # φ(q_t) S_t: (b, h, 1, d)
        den = q @ z[..., None]  # φ(q_t) z_t: (b, h, 1, 1)
        return self.o_proj(merge_heads(num / (den + self.phi.eps))), {"S": S, "z": z}


def parallel_form(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """o = tril(φ(Q)φ(K)ᵀ) V / tril(φ(Q)φ(K)ᵀ) 1, the n×n reference."""
    n = q.shape[2]
    causal = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
    a = (q @ k.transpose(-2, -1)).masked_fill(~causal, 0.0)  # A: (b, h, n, n)
    return (a @ v) / (a.sum(dim=-1, keepdim=True) + eps)


def recurrent_form(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """The token loop: S_t = S_{t-1} + φ(k_t)ᵀ v_t, z_t = z_{t-1} + φ(k_t)ᵀ, o_t = φ(q_t)S_t / φ(q_t)z_t."""
    b, h, n, D = q.shape
    S = q.new_zeros(b, h, D, v.shape[-1])  # (b, h, D, d)
    z = q.new_zeros(b, h, D)  # (b, h, D)
    outputs = []
    # unbind, not k[:, :, t]: its backward is one stack, where n selects would each add an n-long gradient
    for q_t, k_t, v_t in zip(q.unbind(2), k.unbind(2), v.unbind(2), strict=False):  # (b, h, D), (b, h, D), (b, h, d)
        S = S + k_t[..., :, None] * v_t[..., None, :]  # outer product φ(k_t)ᵀ v_t
        z = z + k_t
        num = (q_t[..., None, :] @ S)[..., 0, :]  # φ(q_t) S_t: (b, h, d)
        den = (q_t * z).sum(dim=-1, keepdim=True)  # φ(q_t) z_t: (b, h, 1)
        outputs.append(num / (den + eps))
    return torch.stack(outputs, dim=2)  # (b, h, n, d)


def chunked_form(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk_size: int, eps: float = EPS) -> torch.Tensor:
    """Intra-chunk parallel form + inter-chunk state S_c, all chunks at once."""
    b, h, n, D = q.shape
    d = v.shape[-1]
    C = min(chunk_size, n)
    pad = (-n) % C
    if pad:  # zero features contribute nothing to S, z or A
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    c = (n + pad) // C
    q, k, v = (t.reshape(b, h, c, C, t.shape[-1]) for t in (q, k, v))  # (b, h, c, C, ·)
    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    a = (q @ k.transpose(-2, -1)).masked_fill(~causal, 0.0)  # intra-chunk A: (b, h, c, C, C)
    chunk_kv = k.transpose(-2, -1) @ v  # φ(K_c)ᵀ V_c: (b, h, c, D, d)
    chunk_z = k.sum(dim=3)  # φ(K_c)ᵀ 1: (b, h, c, D)
    S = torch.cumsum(chunk_kv, dim=2) - chunk_kv  # S_c = Σ_{c' < c} φ(K_c')ᵀ V_c' (exclusive scan)
    z = torch.cumsum(chunk_z, dim=2) - chunk_z
    num = a @ v + q @ S  # (b, h, c, C, d)
    den = a.sum(dim=-1) + (q @ z[..., None])[..., 0]  # (b, h, c, C)
    o = num / (den[..., None] + eps)
    return o.reshape(b, h, c * C, d)[:, :, :n]


# ----------------------------------------------------------------------------- cost model


def _phi_cost(t: Tally, config: dict[str, Any], rows: int, is_query: bool) -> None:
    """FLOPs of φ over `rows` vectors of head_dim (rows = tokens × heads)."""
    d, kind = config["head_dim"], config["feature_map"]
    if kind == "elu1":
        t.elementwise(rows * d, 2, 1)  # elu, +1; backward elu_backward
    elif kind == "relu":
        t.elementwise(rows * d, 1, 1)
    elif kind == "taylor":
        t.elementwise(rows * d, 1, 1)  # x̃ = x·d^-¼
        t.elementwise(rows * d * d, 2, 4)  # x̃x̃ᵀ (1), ·1/√2 (1); backward: 2 products + 2 sums into x̃
        t.add(0, rows * d)  # the gradients of x̃ from x̃ itself and from x̃x̃ᵀ are summed
    else:
        m = config["n_features"]
        t.elementwise(rows * d, 1, 1)  # x̃
        t.matmul(1, rows, d, m, grads=1)  # ωᵀx̃ (ω is a fixed buffer: no gradient)
        t.elementwise(rows * d, 1, 1)  # x̃²
        t.add(rows * d, rows * d)  # Σ x̃² (reduction); backward expands
        t.elementwise(rows, 1, 1)  # ·½
        t.elementwise(rows * m, 1, 0)  # projected − ½‖x̃‖²
        t.add(0, rows * m)  # backward: grad of ‖x̃‖² is a sum over m
        if is_query:
            t.add(rows * m, 0)  # row max
            t.elementwise(rows * m, 1, 0)  # − max
        else:
            t.elementwise(rows, 1, 0)  # ½‖x̃‖² + the per-head key offset
        t.elementwise(rows * m, 2, 2)  # exp, ·1/√m
        t.add(0, rows * d)  # dx̃: the gradients of ωᵀx̃ and ‖x̃‖² are summed
        t.elementwise(0, 0, 0)


def linear_attention_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, dm, h, d = config["batch"], config["seq_len"], config["d_model"], config["n_heads"], config["head_dim"]
    D = feature_dim(config)
    state_bytes = b * h * D * (d + 1) * dtype_bytes(config)

    def projections(t: Tally, tokens: int) -> None:
        for _ in range(3):
            t.linear(tokens, dm, h * d)  # Q, K, V
        t.linear(tokens, h * d, dm)  # O
        t.add(0, 2 * tokens * dm)  # dx: three gradients summed
        _phi_cost(t, config, tokens * h, is_query=True)
        _phi_cost(t, config, tokens * h, is_query=False)

    if mode == "decode":

        def per_token(context: int) -> float:
            t = Tally()
            projections(t, b)
            rows = b * h
            t.matmul(rows, D, 1, d)  # φ(k_t)ᵀ v_t
            t.elementwise(rows * D * d)  # S + …
            t.elementwise(rows * D)  # z + …
            t.matmul(rows, 1, D, d)  # φ(q_t) S_t
            t.matmul(rows, 1, D, 1)  # φ(q_t) z_t
            t.elementwise(rows, 1)  # + ε
            t.elementwise(rows * d, 1)  # ÷
            return t.forward

        return Cost(mean_over_decode(config, per_token), state_bytes)

    t = Tally()
    projections(t, b * n)
    bh = b * h
    impl = config["impl"]
    if impl == "parallel":
        t.matmul(bh, n, D, n)  # φ(Q)φ(K)ᵀ
        t.matmul(bh, n, n, d)  # A V
        t.add(bh * n * n, bh * n * n)  # A 1 (row sums); backward expands
        t.elementwise(bh * n, 1, 0)  # + ε
        t.elementwise(bh * n * d, 1, 3)  # ÷; backward: grad of numerator (1), of denominator (2)
        t.add(0, bh * n * d)  # sum of the denominator's gradient over d
        t.add(0, bh * n * n)  # dA: the gradients through A V and A 1 are summed
    elif impl == "recurrent":
        t.elementwise(bh * n * D * d, 2, 0)  # S + φ(k)ᵀ v (outer product, add)
        t.elementwise(bh * n * D, 1, 0)  # z + φ(k)
        t.matmul(bh * n, 1, D, d)  # φ(q_t) S_t
        t.add(bh * n * D * 2, 0)  # φ(q_t) z_t: multiply, sum
        t.elementwise(bh * n, 1, 0)  # + ε
        t.elementwise(bh * n * d, 1, 0)  # ÷
        t.add(0, _recurrent_backward(bh, n, D, d))
    else:
        C = min(config["chunk_size"], n)
        c = -(-n // C)
        rows = bh * c
        t.matmul(rows, C, D, C)  # intra-chunk φ(Q_c)φ(K_c)ᵀ
        t.matmul(rows, D, C, d)  # φ(K_c)ᵀ V_c
        t.add(rows * C * D, rows * C * D)  # φ(K_c)ᵀ 1; backward expands
        t.elementwise(rows * D * d, 2, 1)  # cumsum, − (exclusive); backward: flipped cumsum… and minus
        t.add(0, rows * D * d * 2)  # backward of the exclusive scan: cumsum of the flipped gradient, sum of two paths
        t.elementwise(rows * D, 2, 1)  # same for z
        t.add(0, rows * D * 2)
        t.matmul(rows, C, C, d)  # A V
        t.matmul(rows, C, D, d)  # φ(Q_c) S_c
        t.elementwise(rows * C * d, 1, 0)  # intra + inter
        t.add(rows * C * C, rows * C * C)  # A 1
        t.matmul(rows, C, D, 1)  # φ(Q_c) z_c
        t.elementwise(rows * C, 2, 0)  # + inter, + ε
        t.elementwise(rows * C * d, 1, 3)  # ÷
        t.add(0, rows * C * d)  # sum of the denominator's gradient over d
        t.add(0, rows * C * C + rows * C * D)  # dA and dφ(Q) gradients summed over two paths
    return Cost(t.total(mode), state_bytes)


def _recurrent_backward(bh: int, n: int, D: int, d: int) -> float:
    """Backward of the token loop, op by op as autograd runs it (the matmul φ(q_t)S_t is counted with its forward)."""
    per_token = (
        4 * D * d  # outer product φ(k_t)ᵀv_t: grads of k_t and v_t (multiply, sum over the other axis)
        + 2 * D  # φ(q_t)·z_t: grads of q_t and z_t
        + 2 * D  # q_t and k_t each receive two gradients, summed
        + 6 * d  # ÷: grad of numerator (1), of denominator (neg, 2 div, mul), summed over d
    )
    chain = (n - 1) * (D * d + D)  # dS_t, dz_t add the gradient coming back from step t+1
    return bh * (n * per_token + chain)


def _validate(config: dict[str, Any]) -> None:
    if config["feature_map"] == "taylor" and config["head_dim"] > 128:
        raise ConfigError(f"head_dim={config['head_dim']} is too large for taylor features (D = 1 + d + d²); at most 128")


@register(
    MechanismSpec(
        name="linear_attention",
        family="linear_attention",
        summary="Kernelised causal linear attention o_t = φ(q_t)S_t / φ(q_t)z_t with parallel, recurrent and chunked forms",
        paper=Paper("Transformers are RNNs: Fast Autoregressive Transformers with Linear Attention", 2020, "2006.16236"),
        causal=True,
        defaults={"n_heads": 2, "head_dim": None, "feature_map": "elu1", "n_features": 64, "impl": "chunked", "chunk_size": 64},
        choices={"impl": IMPLS, "feature_map": FEATURE_MAPS},
        cost=linear_attention_cost,
        validate=_validate,
        measure=MeasureHints(loop_impls=("recurrent",)),
        complexity={"prefill": "O(N·D·d) (chunked: + O(N·C·D))", "train": "O(N·D·d)", "decode": "O(D·d) per token", "state": "O(D·d)"},
        tests=TestHooks(overrides={"chunk_size": 8}),
        claims=(
            Claim("flops", "seq_len", 1.0, "forward", {"impl": "chunked"}),
            Claim("flops", "seq_len", 1.0, "forward", {"impl": "recurrent"}),
            Claim("flops", "seq_len", 2.0, "forward", {"impl": "parallel"}),
            Claim("flops", "seq_len", 1.0, "train", {"impl": "chunked"}),
            Claim("flops", "head_dim", 2.0, "forward", {"impl": "recurrent"}),
            Claim("state_bytes", "seq_len", 0.0, "decode"),
            Claim("flops", "seq_len", 0.0, "decode"),
        ),
    )
)
def build_linear_attention(config: dict[str, Any]) -> LinearAttention:
    return LinearAttention(
        config["d_model"], config["n_heads"], config["head_dim"], config["feature_map"], config["n_features"],
        config["impl"], config["chunk_size"],
    )
