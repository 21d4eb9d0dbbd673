"""Analytic FLOPs of mamba2, op by op as mamba2.py and ssd.py run them (and autograd runs their backward).

Glossary as in mamba2.py: b batch, n seq_len, d d_model, D_in = expand·d, H n_heads, P = D_in/H, N d_state,
K d_conv, Q chunk_size, c = ⌈n/Q⌉ chunks, n' = c·Q the padded length.
"""

from __future__ import annotations

from typing import Any

from effprof.cost_model import Tally, dtype_bytes, mean_over_decode
from effprof.mechanisms.ssm.conv import conv_cost
from effprof.registry import Cost


def _block_in(t: Tally, config: dict[str, Any], tokens: int) -> None:
    """in-projection, conv + SiLU over [x, B, C], Δ = softplus(δ + b_Δ), X = Δx, a = ΔA."""
    d, N, H = config["d_model"], config["d_state"], config["n_heads"]
    d_inner = config["expand"] * d
    t.linear(tokens, d, 2 * d_inner + 2 * N + H)
    conv_cost(t, config["batch"], tokens // config["batch"], d_inner + 2 * N, config["d_conv"])
    t.elementwise(tokens * (d_inner + 2 * N))  # SiLU
    t.elementwise(tokens * H, 2, 2)  # δ + b_Δ, softplus; bwd: softplus', Σ into b_Δ
    t.elementwise(H, 2, 2)  # A = -exp(A_log)
    t.elementwise(tokens * d_inner, 1, 3)  # X = x Δ; bwd: 2 products, Σ_P into Δ
    t.elementwise(tokens * H, 1, 3)  # a = Δ A; bwd: 2 products, Δ's two gradients summed
    t.add(0, tokens * H)  # bwd: Σ over tokens into A


def _block_out(t: Tally, config: dict[str, Any], tokens: int) -> None:
    """y + D x, ⊙ SiLU(z), gated RMSNorm, out-projection."""
    d = config["d_model"]
    d_inner = config["expand"] * d
    t.elementwise(tokens * d_inner, 2, 3)  # x·D, +; bwd: 2 products, Σ into D
    t.elementwise(tokens * d_inner, 2, 3)  # SiLU(z), ⊙; bwd: 2 products, SiLU'
    # v², mean, v·r, ·w; bwd: ·w (2 products, Σ into w), v·r (2 products, Σ_D into r), mean (÷),
    # v² (v¹, 2 products), v's and x's two gradients summed
    t.elementwise(tokens * d_inner, 4, 12)
    t.elementwise(tokens, 2, 3)  # + ε, rsqrt; bwd: r³ (pow), 2 products
    t.linear(tokens, d_inner, d)


def _state_passing_backward(c: int, state: int) -> float:
    """Backward of H_{k+1} = decay_k H_k + S_k over c chunks: the last update feeds nothing, H₀ = 0 takes none."""
    return (max(2 * c - 3, 0) + max(c - 1, 0) + max(c - 2, 0)) * state  # products, Σ into decay, H_k's uses


def _recurrent(t: Tally, b: int, n: int, H: int, P: int, N: int) -> None:
    """n steps of h = exp(a_t) h + X_t B_tᵀ, y_t = h C_t."""
    state = b * H * P * N
    # exp(a_t); decay ⊙ h, X_t ⊗ B_t, +; bwd: exp', 4 products (none into h₀), Σ_PN, Σ_N, Σ_P, Σ_H into B_t,
    # h's two gradients summed
    t.add(b * n * H + 3 * n * state, b * n * H + (7 * n - 1 + n - 1) * state + n * b * H * N)
    t.matmul(b * n * H, P, N, 1)  # h C_t


def _quadratic(t: Tally, b: int, n: int, H: int, P: int, N: int) -> None:
    """Y = (exp(segsum(a)) ∘ C Bᵀ) X over the whole sequence."""
    pairs = b * H * n * n
    t.add(2 * pairs, 3 * pairs)  # segsum's cumsum, exp; bwd: exp', reversed cumsum, Σ of the repeated a
    t.matmul(b, n, N, n)  # C Bᵀ
    t.add(pairs, 3 * pairs)  # L ∘ C Bᵀ; bwd: 2 products, Σ_H into C Bᵀ
    t.matmul(b * H, n, n, P)


def _chunked(t: Tally, b: int, n: int, H: int, P: int, N: int, size: int) -> None:
    """The SSD block decomposition of ssd.chunked_ssd."""
    Q = min(size, n)
    c = -(-n // Q)
    rows = b * H * c * Q  # (b, H, n')
    pairs = b * H * c * Q * Q
    t.add(rows, rows)  # cumsum of a; bwd: reversed cumsum
    t.add(2 * pairs, 4 * pairs)  # 1. L = exp(cumsum_t - cumsum_s); bwd: exp', −, Σ_s, Σ_t
    t.matmul(b * c, Q, N, Q)  # C Bᵀ per chunk
    t.add(pairs, 3 * pairs)  # L ∘ C Bᵀ; bwd: 2 products, Σ_H
    t.matmul(b * H * c, Q, Q, P)  # (…) X
    if c == 1:  # one chunk: the diagonal block is the output; S_1 is only the returned state (no backward)
        t.add(2 * rows + rows * P + 2.0 * b * H * P * Q * N, rows)  # S_1 = (X ⊙ exp(…))ᵀ B; bwd: cumsum's 2 uses
        return
    # 2. exp(cumsum_end - cumsum_s), X ⊙ it; bwd: exp', −, Σ_Q into the end, 2 products, Σ_P, X's two uses summed
    t.add(2 * rows + rows * P, 3 * rows + 4 * rows * P)
    t.matmul(b * H * c, P, Q, N)  # (…)ᵀ B
    # bwd: Σ_H of B's gradient (broadcast over heads); B's and C's two gradients summed
    t.add(0, b * H * c * Q * N + b * c * Q * N + b * c * Q * N)
    t.add(b * H * c, b * H * c)  # 3. chunk decays exp(Σ a)
    t.add(2 * b * H * P * N * c, _state_passing_backward(c, b * H * P * N))  # H_c+1 = decay H_c + S_c
    t.matmul(b * H * c, Q, N, P)  # 4. C H_cᵀ
    # exp(cumsum), ⊙, Y_diag + Y_off; bwd: exp', 2 products, Σ_P; Σ_H of C's gradient; cumsum's 6 uses summed
    t.add(rows + 2 * rows * P, rows + 3 * rows * P + b * H * c * Q * N + 5 * rows)


def mamba2_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, d, N, H = config["batch"], config["seq_len"], config["d_model"], config["d_state"], config["n_heads"]
    d_inner, K = config["expand"] * d, config["d_conv"]
    P = d_inner // H
    state_bytes = b * ((d_inner + 2 * N) * (K - 1) + H * P * N) * dtype_bytes(config)
    if mode == "decode":

        def per_token(context: int) -> float:
            t = Tally()
            _block_in(t, config, b)
            _recurrent(t, b, 1, H, P, N)
            _block_out(t, config, b)
            return t.forward

        return Cost(mean_over_decode(config, per_token), state_bytes)
    t = Tally()
    _block_in(t, config, b * n)
    impl = config["impl"]
    if impl == "recurrent":
        _recurrent(t, b, n, H, P, N)
    elif impl == "quadratic":
        _quadratic(t, b, n, H, P, N)
    else:
        _chunked(t, b, n, H, P, N, config["chunk_size"])
    _block_out(t, config, b * n)
    return Cost(t.total(mode), state_bytes)
