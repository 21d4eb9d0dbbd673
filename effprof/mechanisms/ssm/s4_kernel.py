"""S4's discretised state-space model, one channel per row: recurrence step, convolution kernel, prefill state.

Each of the H channels is its own SSM with a complex state x ∈ ℂᴺ (glossary in s4.py):

    x_k = Ā x_{k-1} + B̄ u_k,        y_k = Re(C x_k)                    (recurrent view)
    K   = (Re CB̄, Re CĀB̄, …, Re CĀ^{L-1}B̄),   y = K * u                (convolutional view)

`Diagonal` (S4D): A = diag(Λ). Both discretisations are elementwise and the kernel is a Vandermonde product,
K_l = Re Σ_n (C_n B̄_n) Ā_n^l, evaluated as two small Vandermonde matrices (l = T·j + r, Ā^l = Ā^{Tj}·Ā^r) whose
product is one batched matmul. With `pairs` (the paper's form, s4.py's default) the N/2 modes given are one of
each conjugate pair (Λ_n̄ = conj Λ_n, B_n̄ = conj B_n, C_n̄ = conj C_n): the partner's term is the conjugate of
its own, so the sum over all N is 2·Re of the sum over the N/2 kept: half the state and half the work.

`DPLR` (S4): A = diag(Λ) - P P*, bilinear transform only (S4's kernel algorithm exists for it alone):
- step: (I - Δ/2·A)⁻¹ by the Woodbury identity, O(N) per step;
- kernel: the generating function Σ_{l<L} K_l z^l = C̃ (I - zĀ)⁻¹ B̄ with C̃ = C(I - Ā^L), evaluated at the L
  roots of unity z_k = e^{-2πik/L} and inverted by an FFT. There (I - zĀ)⁻¹B̄ = (αI - βA)⁻¹ΔB with α = 1 - z,
  β = (1 + z)Δ/2, and (αI - βA)⁻¹ = R - βRP(1 + βP*RP)⁻¹P*R with R = diag(1/(α - βΛ)): a Cauchy kernel,
  four weighted sums Σ_n w_n / (α - βΛ_n) per root;
- prefill state: x_L = Σ_j Ā^j B̄ u_{L-1-j} = (I - Ā^L) Σ_k (z_k û_k / L) (αI - βA)⁻¹ΔB at z_k, û = FFT(u),
  from the same resolvent.

Everything is complex64 (the mechanism computes its SSM in float32 whatever the model dtype).
"""

from __future__ import annotations

import math

import torch


def cexp(z: torch.Tensor) -> torch.Tensor:
    """exp of a complex tensor as e^a(cos b + i sin b): torch's complex exp is several times slower on CPU."""
    return torch.polar(torch.exp(z.real), z.imag)


def fft_conv(u: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """y_k = Σ_{j≤k} K_j u_{k-j} along the time axis by FFT (zero-padded to 2L: no wrap-around).

    u: (b, L, H) real, time-major as the layer holds it (no transposes), K: (H, L) real -> (b, L, H)
    """
    L = u.shape[1]
    spectrum = torch.fft.rfft(u, n=2 * L, dim=1) * torch.fft.rfft(K, n=2 * L).t()  # (b, L+1, H)
    return torch.fft.irfft(spectrum, n=2 * L, dim=1)[:, :L]


def split_length(L: int) -> tuple[int, int]:
    """(T, J) with T·J ≥ L, T ≈ √L: l = T·j + r indexes the two-level Vandermonde."""
    T = math.isqrt(max(L - 1, 0)) + 1
    return T, -(-L // T)


class Diagonal:
    """S4D: Ā, B̄ elementwise from Λ, B and the step Δ; all tensors (H, M) complex: M = N modes, or with
    `pairs` M = N/2 modes standing for themselves and their conjugates (outputs 2·Re instead of Re)."""

    def __init__(
        self, Lambda: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: torch.Tensor, discretization: str,
        pairs: bool = False,
    ):
        self.pairs = pairs
        dtA = dt[:, None] * Lambda  # ΔΛ: (H, N)
        if discretization == "zoh":
            self.log_Abar = dtA  # Ā = exp(ΔΛ)
            self.Abar = cexp(dtA)
            self.Bbar = (self.Abar - 1) / Lambda * B  # B̄ = (ΔΛ)⁻¹(exp(ΔΛ) - I)·ΔB
        else:
            half = dtA / 2
            self.Abar = (1 + half) / (1 - half)  # Ā = (I - Δ/2·Λ)⁻¹(I + Δ/2·Λ)
            self.Bbar = dt[:, None] / (1 - half) * B  # B̄ = (I - Δ/2·Λ)⁻¹ΔB
            self.log_Abar = torch.log(self.Abar)
        self.C = C

    def step(self, x: torch.Tensor, u_k: torch.Tensor) -> torch.Tensor:
        """x_k = Ā x_{k-1} + B̄ u_k;  x: (b, H, M), u_k: (b, H)."""
        return self.Abar * x + self.Bbar * u_k[..., None]

    def readout(self, x: torch.Tensor) -> torch.Tensor:
        """y = Re(C x), or 2·Re(C x) over conjugate pairs: x (b, H, M) -> (b, H)."""
        y = (self.C * x).real.sum(-1)
        return y * 2 if self.pairs else y

    def _powers(self, L: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Ā^r for r < T: (H, N, T) and Ā^{Tj} for j < J: (H, J, N)."""
        T, J = split_length(L)
        r = torch.arange(T, device=self.Abar.device, dtype=torch.float32)
        low = cexp(self.log_Abar[:, :, None] * r)  # (H, N, T)
        high = cexp(self.log_Abar[:, None, :] * (T * r.new_tensor(range(J)))[:, None])  # (H, J, N)
        return low, high

    def kernel(self, L: int) -> torch.Tensor:
        """K_l = Re Σ_n C_n B̄_n Ā_n^l (2·Re over conjugate pairs): the Vandermonde product, as (W Ā^{Tj}) @ Ā^r
        -> (H, L)."""
        low, high = self._powers(L)
        H = low.shape[0]
        K = ((self.C * self.Bbar)[:, None, :] * high) @ low  # (H, J, T): entry (j, r) is l = T·j + r
        K = K.reshape(H, -1)[:, :L].real
        return K * 2 if self.pairs else K

    def final_state(self, u: torch.Tensor) -> torch.Tensor:
        """x_L = B̄ ⊙ Σ_l Ā^l u_{L-1-l}, the same two Vandermonde factors; u: (b, H, L) -> (b, H, N)."""
        b, H, L = u.shape
        low, high = self._powers(L)
        T, J = low.shape[-1], high.shape[1]
        w = torch.nn.functional.pad(u.flip(-1), (0, T * J - L)).reshape(b, H, J, T).to(low.dtype)  # u_{L-1-l}
        inner = w @ low.transpose(-2, -1)[None]  # Σ_r Ā^r w_{Tj+r}: (b, H, J, N)
        return self.Bbar * (inner * high).sum(2)


class DPLR:
    """S4: A = diag(Λ) - P P* with the bilinear transform; Λ, P, B, C: (H, N) complex, Δ: (H,)."""

    def __init__(self, Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: torch.Tensor):
        self.Lambda, self.P, self.B, self.C, self.dt = Lambda, P, B, C, dt
        self.half_dt = dt[:, None] / 2  # Δ/2: (H, 1)
        self.dtB = dt[:, None] * B  # ΔB: (H, N)
        # (I - Δ/2·A)⁻¹ = (2/Δ)(R₀ - R₀P P*R₀ / (1 + P*R₀P)),  R₀ = diag(1 / (2/Δ - Λ))   (Woodbury)
        self.R0 = (self.half_dt.reciprocal() - Lambda).reciprocal()  # (H, N)
        self.R0P = self.R0 * P
        self.denominator = 1 + (P.conj() * self.R0P).sum(-1, keepdim=True)  # 1 + P*R₀P: (H, 1)

    def readout(self, x: torch.Tensor) -> torch.Tensor:
        """y = Re(C x): x (b, H, N) -> (b, H)."""
        return (self.C * x).real.sum(-1)

    def _solve(self, v: torch.Tensor) -> torch.Tensor:
        """(I - Δ/2·A)⁻¹ v for v: (..., H, N)."""
        Rv = self.R0 * v
        return (Rv - self.R0P * ((self.P.conj() * Rv).sum(-1, keepdim=True) / self.denominator)) / self.half_dt

    def _apply_A(self, x: torch.Tensor) -> torch.Tensor:
        """A x = Λ x - P (P* x)."""
        return self.Lambda * x - self.P * (self.P.conj() * x).sum(-1, keepdim=True)

    def step(self, x: torch.Tensor, u_k: torch.Tensor) -> torch.Tensor:
        """x_k = (I - Δ/2·A)⁻¹[(I + Δ/2·A) x_{k-1} + ΔB u_k]   (= Ā x_{k-1} + B̄ u_k), O(N)."""
        return self._solve(x + self.half_dt * self._apply_A(x) + self.dtB * u_k[..., None])

    def _Abar_power(self, L: int) -> torch.Tensor:
        """Ā^L as dense (H, N, N) matrices, Ā = (I - Δ/2·A)⁻¹(I + Δ/2·A); the power by repeated squaring."""
        N = self.Lambda.shape[-1]
        eye = torch.eye(N, dtype=self.Lambda.dtype, device=self.Lambda.device)
        A = torch.diag_embed(self.Lambda) - self.P[:, :, None] * self.P.conj()[:, None, :]  # (H, N, N)
        forward_half = eye + self.half_dt[:, :, None] * A  # I + Δ/2·A
        low_rank = self.R0P[:, :, None] * (self.R0 * self.P.conj() / self.denominator)[:, None, :]  # R₀PP*R₀/(1+P*R₀P)
        inverse_half = (torch.diag_embed(self.R0) - low_rank) / self.half_dt[:, :, None]  # (I - Δ/2·A)⁻¹
        return torch.linalg.matrix_power(inverse_half @ forward_half, L)

    def _resolvent(self, L: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """At the roots z_k = e^{-2πik/L}: z (L,), β (H, L), R = 1/(α - βΛ) (H, L, N), α = 1 - z, β = (1 + z)Δ/2."""
        angle = torch.arange(L, device=self.Lambda.device, dtype=torch.float32) * (-2 * math.pi / L)
        z = torch.polar(torch.ones_like(angle), angle)  # (L,)
        alpha = 1 - z
        beta = (1 + z) * self.half_dt  # (H, L)
        R = (alpha[None, :, None] - beta[:, :, None] * self.Lambda[:, None, :]).reciprocal()  # (H, L, N)
        return z, beta, R

    def kernel(self, L: int) -> torch.Tensor:
        """K by the truncated generating function at the L roots of unity, then an inverse FFT -> (H, L)."""
        power = self._Abar_power(L)
        C_tilde = self.C - (self.C[:, None, :] @ power)[:, 0]  # C̃ = C(I - Ā^L)
        _, beta, R = self._resolvent(L)
        Pc = self.P.conj()
        weights = torch.stack([C_tilde * self.B, C_tilde * self.P, Pc * self.B, Pc * self.P], dim=-1)  # (H, N, 4)
        k00, k01, k10, k11 = (R @ weights).unbind(-1)  # Cauchy sums Σ_n w_n / (α - βΛ_n): (H, L) each
        khat = k00 - beta * k01 * k10 / (1 + beta * k11)  # C̃(αI - βA)⁻¹B
        khat = khat * self.dt[:, None]  # ·Δ
        return torch.fft.ifft(khat, dim=-1).real

    def final_state(self, u: torch.Tensor) -> torch.Tensor:
        """x_L = (I - Ā^L) Σ_k (z_k û_k / L)·Δ[R_k B - c_k R_k P], c_k = β_k P*R_kB / (1 + β_k P*R_kP); u: (b, H, L)."""
        b, H, L = u.shape
        power = self._Abar_power(L)
        z, beta, R = self._resolvent(L)
        Pc = self.P.conj()
        k10, k11 = (R @ torch.stack([Pc * self.B, Pc * self.P], dim=-1)).unbind(-1)  # P*RB, P*RP: (H, L)
        c = beta * k10 / (1 + beta * k11)  # (H, L)
        w = torch.fft.fft(u, dim=-1) * (z / L)  # z_k û_k / L: (b, H, L)
        sums = torch.stack([w, w * c], dim=1).reshape(b * 2, H, L).transpose(0, 1) @ R  # (H, 2b, N)
        sums = sums.transpose(0, 1).reshape(b, 2, H, self.B.shape[-1])
        s = self.dt[:, None] * (sums[:, 0] * self.B - sums[:, 1] * self.P)  # (b, H, N)
        return s - (power @ s[..., None])[..., 0]
