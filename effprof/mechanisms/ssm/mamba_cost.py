"""Analytic FLOPs of mamba, op by op as mamba.py and selective_scan.py run them (and autograd runs their backward).

Glossary as in mamba.py: b batch, n seq_len, d d_model, D_in = expand·d, N d_state, R = ⌈d/16⌉, K d_conv,
C chunk_size, c = ⌈n/C⌉ lanes, n' = c·C the padded length.
"""

from __future__ import annotations

import math
from typing import Any

from effprof.cost_model import Tally, dtype_bytes, mean_over_decode
from effprof.mechanisms.ssm.conv import conv_cost
from effprof.registry import Cost


def dt_rank(d_model: int) -> int:
    """R, the rank of Δ's projection: ⌈d/16⌉ as in the paper."""
    return math.ceil(d_model / 16)


def _block_in(t: Tally, config: dict[str, Any], tokens: int) -> None:
    """in-projection, conv + SiLU, x_proj, Δ = softplus(dt_proj(δ)), A = -exp(A_log)."""
    d, N = config["d_model"], config["d_state"]
    d_inner, rank = config["expand"] * d, dt_rank(d)
    t.linear(tokens, d, 2 * d_inner)
    conv_cost(t, config["batch"], tokens // config["batch"], d_inner, config["d_conv"])
    t.elementwise(tokens * d_inner)  # SiLU
    t.linear(tokens, d_inner, rank + 2 * N)
    t.linear(tokens, rank, d_inner, bias=True)
    t.elementwise(tokens * d_inner)  # softplus
    t.elementwise(d_inner * N, 2, 2)  # A = -exp(A_log); bwd: −, × exp


def _gate(t: Tally, tokens: int, d_inner: int) -> None:
    """(y + D x) ⊙ SiLU(z): x·D, +, SiLU(z), ⊙; bwd: 4 products, Σ into D, SiLU', x's three gradients summed (2)."""
    t.elementwise(tokens * d_inner, 4, 8)


def _block_out(t: Tally, config: dict[str, Any], tokens: int) -> None:
    """y + D x, ⊙ SiLU(z), out-projection."""
    d = config["d_model"]
    d_inner = config["expand"] * d
    _gate(t, tokens, d_inner)
    t.linear(tokens, d_inner, d)


def _sequential_scan(t: Tally, b: int, n: int, d_inner: int, N: int) -> None:
    """n steps of Ā = exp(Δ_t A), h = Ā h + (Δ_t x_t) B_t, y_t = h C_t."""
    volume = b * n * d_inner * N
    t.add(5 * volume, 0)  # Δ⊗A, exp, Ā⊙h, (Δ_t x_t)⊗B_t, +
    t.add(b * n * d_inner, 2 * b * n * d_inner)  # Δ_t x_t; bwd: 2 products
    t.matmul(b * n, d_inner, N, 1)  # h C_t
    # bwd per step: Δ⊗A (2 products, Σ_N into Δ, Σ_b into A), exp, Ā⊙h (2 products; none into h₀),
    # outer product (2 products, Σ_N, Σ_D); h's two gradients summed; Δ_t's two gradients summed
    t.add(0, 11 * volume - b * d_inner * N + (n - 1) * b * d_inner * N + b * n * d_inner)
    t.add(0, (n - 1) * d_inner * N)  # A reused every step: n gradients summed


def _chunked_scan(t: Tally, b: int, n: int, d_inner: int, N: int, size: int) -> None:
    """The three-phase lane scan of selective_scan.chunked_scan (the compiled kernel does the same arithmetic)."""
    size = min(size, n)
    lanes = -(-n // size)
    padded = lanes * size
    per_position = b * lanes * N * d_inner  # one position of every lane
    volume = size * per_position
    t.add(b * n * d_inner, 3 * b * n * d_inner)  # u = Δ x; bwd: 2 products, Δ's gradients summed
    # phase 1: Δ⊗A, exp, ⊙h, addcmul (2); bwd: 7 products (none into h = 0 at the first position),
    # 4 reductions, and the scalings of addcmul's two gradients (b·c·(N + D_in) per position)
    t.add(5 * volume, 11 * volume - per_position + b * padded * (N + d_inner))
    t.matmul(b * padded, 1, N, d_inner)  # phase 1: C_t h
    if lanes == 1:  # one lane: phase 1 is the whole scan
        t.add(0, (size - 1) * (per_position + d_inner * N))  # bwd: h's, A's gradients summed
        return
    t.add(b * padded * d_inner, b * padded * d_inner)  # cumulative ΣΔ within lanes; bwd: reversed cumsum
    t.add(2 * b * lanes * N * d_inner, 5 * b * lanes * N * d_inner)  # lane decay exp(A·ΣΔ); bwd: 3 products, 2 Σ
    # phase 2: H = decay ⊙ H + h_end, c lane steps; bwd through all but the last step (H₀ = 0 takes none)
    t.add(2 * b * lanes * N * d_inner, (max(2 * lanes - 3, 0) + max(lanes - 2, 0)) * b * N * d_inner)
    t.add(3 * volume, 7 * volume)  # phase 3: ΣΔ⊗A, exp, ⊙H; bwd: 5 products, 2 reductions
    t.matmul(b * padded, 1, N, d_inner)  # phase 3: C_t (…)
    t.add(b * padded * d_inner, 0)  # outputs +=
    # bwd: gradients summed: h (C per lane position), H_k (C - 1 uses), Δ and C padded (2 uses), A (2C + 1 uses)
    t.add(0, (2 * size - 1) * per_position + 2 * b * padded * d_inner + b * padded * N + 2 * size * d_inner * N)


ONE_PASS_CHANNELS = 256  # b·D_in from which the compiled forward runs in one pass (8 blocks of 32 channels)


def one_pass(b: int, d_inner: int) -> bool:
    """Whether the compiled forward runs its one-pass form: sequences × channels alone give the threads enough
    work (b·D_in ≥ 256, eight blocks of 32 channels), so the tokens need not be cut into lanes run in
    parallel, which costs a second pass (phase 3). Its FLOPs are then those of one lane of n tokens."""
    return b * d_inner >= ONE_PASS_CHANNELS


def selective_scan_flops(b: int, n: int, d_inner: int, N: int, size: int) -> float:
    """Forward FLOPs of the compiled kernel (registered with torch's flop counter): the lane scan (one lane of
    n tokens where it runs in one pass) and the output around it, which it finishes in the same pass."""
    t = Tally()
    _chunked_scan(t, b, n, d_inner, N, n if one_pass(b, d_inner) else size)
    _gate(t, b * n, d_inner)
    return t.forward


def selective_scan_backward_flops(b: int, n: int, d_inner: int, N: int, size: int) -> float:
    """FLOPs of the compiled backward (selective_scan.c, chunked_selective_scan_backward), phase by phase:
    a. the adjoint of every lane after the first from 0: 5 per (token, channel, state), 7 per (token, channel);
    b. the adjoints passed across lanes: 4 per (lane after the first, channel, state);
    c. every lane's states recomputed and every gradient accumulated: 22 per (token, channel, state), 23 per
       (token, channel);
    d. ∂A and ∂D summed over the b·c lanes."""
    size = min(size, n)
    lanes = -(-n // size)
    later = b * (n - size)  # tokens of the lanes after the first
    return (later * d_inner * (5 * N + 7) + 4 * b * (lanes - 1) * d_inner * N + b * n * d_inner * (22 * N + 23)
            + b * lanes * (N + 1) * d_inner)


def mamba_cost(config: dict[str, Any], mode: str) -> Cost:
    b, n, d, N = config["batch"], config["seq_len"], config["d_model"], config["d_state"]
    d_inner, K = config["expand"] * d, config["d_conv"]
    state_bytes = b * d_inner * (K - 1 + N) * dtype_bytes(config)
    if mode == "decode":

        def per_token(context: int) -> float:
            t = Tally()
            _block_in(t, config, b)
            _sequential_scan(t, b, 1, d_inner, N)
            _block_out(t, config, b)
            return t.forward

        return Cost(mean_over_decode(config, per_token), state_bytes)
    t = Tally()
    _block_in(t, config, b * n)
    if config["impl"] == "chunked_c":  # the kernels: scan and gate in one op each way
        size = config["chunk_size"]
        # bwd: the backward kernel, and x's two gradients (from x_proj and from the kernel) summed
        t.add(selective_scan_flops(b, n, d_inner, N, size), selective_scan_backward_flops(b, n, d_inner, N, size) + b * n * d_inner)
        t.linear(b * n, d_inner, d)
        return Cost(t.total(mode), state_bytes)
    if config["impl"] == "sequential":
        _sequential_scan(t, b, n, d_inner, N)
    else:
        _chunked_scan(t, b, n, d_inner, N, config["chunk_size"])
    _block_out(t, config, b * n)
    return Cost(t.total(mode), state_bytes)
