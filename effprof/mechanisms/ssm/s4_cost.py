"""Analytic FLOPs of s4, op by op as s4.py and s4_kernel.py run them (and autograd runs their backward).

Complex arithmetic in the counter's convention: a complex multiply is 6 FLOPs, a complex add, subtract,
divide, negation, log or sign 2, a complex matmul 8 per multiply-add, torch.polar 6 per output; a real
FFT of length n costs 2.5·n·log2 n, a complex one 5·n·log2 n. Reductions over complex inputs count 1 per
input element. Glossary as in s4.py: b batch, L seq_len, H d_model, N d_state, n = 2L the FFT length,
M the complex modes kept per channel: N/2 conjugate pairs for param=diag, all N for param=dplr.
"""

from __future__ import annotations

import math
from typing import Any

from effprof.cost_model import Tally, mean_over_decode
from effprof.mechanisms.ssm.s4_kernel import split_length
from effprof.registry import Cost

COMPLEX_MUL, COMPLEX_ADD = 6, 2
CEXP = 1 + 6  # real exp of the real part, then polar
CEXP_BACKWARD = 2 + 6 + 6 + 6 + 1 + 2  # polar's backward (sgn, three complex products, a real one, a sum of parts)
COMPLEX_STATE_BYTES = 8  # complex64


def _complex_matmul(t: Tally, batch: int, m: int, k: int, n: int) -> None:
    """A complex (m×k)@(k×n) is 4 real ones: 8 FLOPs per multiply-add; backward one per input."""
    t.matmul(4 * batch, m, k, n)


def _parameters(t: Tally, H: int, N: int) -> None:
    """Λ = -exp(log_neg_real) + i·imag, Δ = exp(log Δ)."""
    t.elementwise(H * N, 2, 2)  # exp, neg; backward neg, × exp
    t.elementwise(H, 1, 1)  # Δ = exp; backward × Δ


def _diagonal_discretization(t: Tally, H: int, N: int, discretization: str, uses_log: bool) -> None:
    """Ā, B̄ (and log Ā) of Diagonal; backward into Λ, B, Δ."""
    if discretization == "zoh":
        # ΔΛ (6), cexp (7), Ā - 1 (2), ÷Λ (2), ×B (6)
        forward = COMPLEX_MUL + CEXP + 2 * COMPLEX_ADD + COMPLEX_MUL
        # backward: ×B (2 products), ÷Λ (÷, ÷, −, ×, ÷), Ā - 1 and Ā's two uses summed (+), cexp,
        # ΔΛ (2 products, Re-sum over N into Δ), Λ's two uses summed (+)
        backward = CEXP_BACKWARD + 5 * COMPLEX_MUL + 6 * COMPLEX_ADD + 1
        t.add(forward * H * N, backward * H * N)
        return
    # ΔΛ (6), /2, 1 +, 1 −, ÷ (Ā), 1 − again, Δ ÷ (·), ×B (6), log Ā
    forward = COMPLEX_MUL + 6 * COMPLEX_ADD + COMPLEX_MUL + COMPLEX_ADD
    # backward: log (÷Ā, when log Ā is used); ×B (2 products); Δ ÷ (1 − ΔΛ/2) (÷, −, ×, ÷ and a Re-sum over N
    # into Δ); Ā = p/q (÷, −, ÷, ÷, ×, −); the two (1 − ΔΛ/2) and p, q summed into ΔΛ/2 (2 +); /2;
    # ΔΛ (2 products, Re-sum into Δ): 6 products, 13 two-FLOP ops, 2 real sums
    backward = (COMPLEX_ADD if uses_log else 0) + 6 * COMPLEX_MUL + 13 * COMPLEX_ADD + 2
    t.add(forward * H * N, backward * H * N + H)  # + H: Δ's two gradients summed


def _vandermonde_kernel(t: Tally, H: int, N: int, L: int) -> None:
    """K = Re((W ⊙ Ā^{Tj}) @ Ā^r), W = C ⊙ B̄."""
    T, J = split_length(L)
    low, high = H * N * T, H * J * N
    t.add((COMPLEX_MUL + CEXP) * low, (CEXP_BACKWARD + COMPLEX_MUL + 1) * low)  # Ā^r = cexp(log Ā · r); bwd: Σ_r
    t.add(J, 0)  # T·j
    t.add((COMPLEX_MUL + CEXP) * high, (CEXP_BACKWARD + COMPLEX_MUL + 1) * high)  # Ā^{Tj}; bwd: Σ_j
    t.add(0, COMPLEX_ADD * H * N)  # log Ā's two gradients summed
    t.add(COMPLEX_MUL * H * N, 2 * COMPLEX_MUL * H * N)  # W = C ⊙ B̄
    t.add(COMPLEX_MUL * high, (2 * COMPLEX_MUL + 1) * high)  # W ⊙ Ā^{Tj}; bwd: 2 products, Σ_j into W
    _complex_matmul(t, H, J, N, T)


def _fft_conv(t: Tally, b: int, H: int, L: int) -> None:
    """y = irfft(rfft(u, 2L) ⊙ rfft(K, 2L)); backward: rfft of the gradient, two products, complex FFTs."""
    n = 2 * L
    real_fft = 2.5 * n * math.log2(n)
    t.add(real_fft * (2 * b * H + H), real_fft * b * H)  # rfft(u), rfft(K), irfft; bwd: rfft(grad)
    t.add(COMPLEX_MUL * b * H * (L + 1), COMPLEX_MUL * b * H * (L - 1))  # spectra product; bwd: ×2 on inner bins
    t.add(0, 2 * COMPLEX_MUL * b * H * (L + 1) + b * H * (L + 1))  # bwd: 2 products, Σ over batch into K
    t.add(0, 2 * real_fft * (b * H + H))  # bwd of rfft(u), rfft(K): complex FFTs


def _diagonal_recurrence(t: Tally, b: int, H: int, N: int, L: int) -> None:
    """L steps of x = Ā x + B̄ u_k and y_k = Re(C x)."""
    bhn = b * H * N
    per_step = 3 * COMPLEX_MUL + COMPLEX_ADD + 1  # Āx, B̄u, +, C x, Σ_n Re
    # bwd per step: readout (2 products, Σ_b into C), B̄u (2 products, Σ_b, Σ_n Re into u),
    # Āx (product into Ā, Σ_b), and from step 2 the product into x_{k-1} and x's two gradients summed
    backward = L * (2 * COMPLEX_MUL + 1 + 2 * COMPLEX_MUL + 2 + COMPLEX_MUL + 1) + (L - 1) * (COMPLEX_MUL + COMPLEX_ADD)
    t.add(per_step * bhn * L, backward * bhn + (L - 1) * 3 * COMPLEX_ADD * H * N)  # Ā, B̄, C: L gradients summed


def _dplr_setup(t: Tally, H: int, N: int) -> None:
    """DPLR.__init__: Δ/2, ΔB, R₀ = 1/(2/Δ - Λ), R₀P, 1 + P*R₀P (forward; its backward is counted per impl)."""
    t.add(3 * COMPLEX_MUL * H * N + 2 * COMPLEX_ADD * H * N + H * N)  # ΔB, R₀P, P̄R₀P; 2/Δ - Λ, reciprocal; Σ_n
    t.add(2 * H + COMPLEX_ADD * H)  # Δ/2, 2/Δ; 1 + P*R₀P


DPLR_STEP = 8 * COMPLEX_MUL + 5 * COMPLEX_ADD + 2  # Ax, (I + Δ/2·A)x + ΔBu, (I - Δ/2·A)⁻¹ (Woodbury)
DPLR_STEP_PER_ROW = COMPLEX_ADD  # ÷ (1 + P*R₀P), per channel


def _dplr_recurrence(t: Tally, b: int, H: int, N: int, L: int) -> None:
    """L Woodbury steps and readouts; backward as autograd runs it."""
    bhn, bh = b * H * N, b * H
    t.add((DPLR_STEP + COMPLEX_MUL + 1) * bhn * L + DPLR_STEP_PER_ROW * bh * L)  # step, Re(C x)
    # backward per step: 19 complex products, 3 quotients, 3 negations, 1 sum of Rv's two gradients,
    # 10 complex and 3 real reductions; no products into x₀ (2); x_k's four gradients summed (3 +) from step 2
    t.add(0, (19 * COMPLEX_MUL + 7 * COMPLEX_ADD + 13) * bhn * L - 2 * COMPLEX_MUL * bhn + 3 * COMPLEX_ADD * bhn * (L - 1))
    t.add(0, (2 * COMPLEX_ADD + 2 * COMPLEX_ADD + COMPLEX_MUL + 1) * bh * L)  # ÷ (1 + P*R₀P): ÷, ÷, −, ×, Σ_b
    # Λ, P (3 uses), R₀, R₀P, ΔB, C reused every step: 8 gradients summed per step; 1 + P*R₀P: 1; Δ/2: 2 real
    t.add(0, 8 * COMPLEX_ADD * H * N * (L - 1) + COMPLEX_ADD * H * (L - 1) + 2 * H * L)
    # the set-up's backward: 8 products, 2 negations, 2 real sums, 7 gradients summed; Δ/2, 2/Δ: 4
    t.add(0, (8 * COMPLEX_MUL + 2 * COMPLEX_ADD + 2 + 7 * COMPLEX_ADD) * H * N + 5 * H)


def _matrix_power_products(L: int) -> int:
    """Products torch.linalg.matrix_power(Ā, L) runs: squarings plus the multiplies of set bits."""
    return L.bit_length() - 1 + L.bit_count() - 1


def _dplr_kernel(t: Tally, H: int, N: int, L: int) -> None:
    """DPLR.kernel: dense Ā, Ā^L, C̃, Cauchy sums at the L roots of unity, Woodbury, inverse FFT."""
    products = _matrix_power_products(L)
    # dense A = diag(Λ) - PP*, I + Δ/2·A, (I - Δ/2·A)⁻¹ = (diag(R₀) - R₀P ⊗ R₀P̄/(1+P*R₀P)) / (Δ/2):
    # 3 outer/scalar products, 3 adds/subtracts, 1 quotient per entry
    t.add((3 * COMPLEX_MUL + 4 * COMPLEX_ADD) * H * N * N, (7 * COMPLEX_MUL + 6 * COMPLEX_ADD + 2 + 4) * H * N * N)
    t.add(0, COMPLEX_ADD * H * N * N * products)  # bwd: a factor reused in the power chain: gradients summed
    _complex_matmul(t, H * (1 + products), N, N, N)  # Ā = (I - Δ/2·A)⁻¹(I + Δ/2·A), then the power
    _complex_matmul(t, H, 1, N, N)  # C Ā^L
    # R₀P̄, ÷(1 + P*R₀P), C - CĀ^L, the 4 Cauchy weights: 5 products, 2 two-FLOP ops
    t.add((5 * COMPLEX_MUL + 2 * COMPLEX_ADD) * H * N, 0)
    # bwd of all (H, N) work: 17 products, 16 gradient sums, 3 quotients, 4 negations, 2 reductions
    t.add(0, (17 * COMPLEX_MUL + 16 * COMPLEX_ADD + 3 * COMPLEX_ADD + 4 * COMPLEX_ADD + 2) * H * N)
    t.add(0, 8 * H)  # bwd: Δ/2 and 2/Δ (gradients summed, ÷, ×, −)
    t.add((1 + 6 + 2 * COMPLEX_ADD) * L, 0)  # roots z = polar(1, -2πk/L), α = 1 - z, 1 + z
    # β = (1+z)Δ/2, then β k01 k10, β k11, 1 +, ÷, k00 -, ·Δ: 5 products, 3 two-FLOP ops per (channel, root)
    t.add((5 * COMPLEX_MUL + 3 * COMPLEX_ADD) * H * L, (10 * COMPLEX_MUL + 7 * COMPLEX_ADD + 2) * H * L)
    # R = 1/(α - βΛ): product, subtract, reciprocal; bwd: 4 products, 2 negations, 2 reductions
    t.add((COMPLEX_MUL + 2 * COMPLEX_ADD) * H * L * N, (4 * COMPLEX_MUL + 2 * COMPLEX_ADD + 2) * H * L * N)
    _complex_matmul(t, H, L, N, 4)  # Cauchy sums R @ weights
    fft = 5.0 * H * L * math.log2(max(L, 2))
    t.add(fft, fft)  # inverse FFT of the spectrum; bwd: a complex FFT


def _layer(t: Tally, b: int, H: int, L: int, impl: str) -> None:
    """+ D u (an elementwise term, or the FFT kernel's first tap), GELU, out-projection."""
    if impl == "fft":
        t.add(H, H * L)  # K_0 + D; bwd: K's two slices' gradients summed
    else:
        t.elementwise(b * H * L, 2, 4)  # D u, +; bwd: 2 products, Σ into D, u's two gradients summed
    t.elementwise(b * H * L, 1, 1)  # GELU
    t.linear(b * L, H, H)


def modes(config: dict[str, Any]) -> int:
    """M: complex modes per channel (s4.py): one of each conjugate pair for diag, every mode for dplr."""
    return config["d_state"] // 2 if config["param"] == "diag" else config["d_state"]


def _decode_step(config: dict[str, Any]) -> float:
    b, H, N = config["batch"], config["d_model"], modes(config)
    t = Tally()
    _parameters(t, H, N)
    if config["param"] == "dplr":
        _dplr_setup(t, H, N)
        t.add(DPLR_STEP * b * H * N + DPLR_STEP_PER_ROW * b * H)  # one Woodbury step
    else:
        _diagonal_discretization(t, H, N, config["discretization"], uses_log=False)
        t.add((2 * COMPLEX_MUL + COMPLEX_ADD) * b * H * N)  # x = Āx + B̄u
    t.add((COMPLEX_MUL + 1) * b * H * N)  # Re(C x)
    if config["param"] == "diag":
        t.add(b * H)  # 2·Re over conjugate pairs
    t.add(2 * b * H)  # + D u
    t.add(b * H)  # GELU
    t.linear(b, H, H)
    return t.forward


def s4_cost(config: dict[str, Any], mode: str) -> Cost:
    b, L, H, N = config["batch"], config["seq_len"], config["d_model"], modes(config)
    state_bytes = b * H * N * COMPLEX_STATE_BYTES
    if mode == "decode":
        return Cost(mean_over_decode(config, lambda context: _decode_step(config)), state_bytes)
    t = Tally()
    _parameters(t, H, N)
    if config["param"] == "dplr":
        _dplr_setup(t, H, N)
        if config["impl"] == "fft":
            _dplr_kernel(t, H, N, L)
            _fft_conv(t, b, H, L)
        else:
            _dplr_recurrence(t, b, H, N, L)
    elif config["impl"] == "fft":
        _diagonal_discretization(t, H, N, config["discretization"], uses_log=True)
        _vandermonde_kernel(t, H, N, L)
        t.add(H * L, H * L)  # 2·Re over conjugate pairs; bwd: ×2
        _fft_conv(t, b, H, L)
    else:
        _diagonal_discretization(t, H, N, config["discretization"], uses_log=False)
        _diagonal_recurrence(t, b, H, N, L)
        t.add(b * H * L, b * H * L)  # 2·Re over conjugate pairs, every step; bwd: ×2
    _layer(t, b, H, L, config["impl"])
    return Cost(t.total(mode), state_bytes)
