"""HiPPO-LegS: the state matrix S4 starts from (Gu et al. 2020, "HiPPO"; S4 §3).

HiPPO-LegS projects the input history onto Legendre polynomials; its matrices, for n, k = 0..N-1, are

    A_nk = -√(2n+1)·√(2k+1)   n > k          B_n = √(2n+1)
           -(n+1)             n = k
            0                 n < k

A is not normal, so S4 writes it as normal plus low rank (NPLR) with P_n = √(n + ½):

    A = S - P Pᵀ,   S = A + P Pᵀ = -½ I + (skew-symmetric)

S is normal, so it is unitarily diagonalised, S = V Λ V*, with Λ = -½ + iω. In the basis V:

    V* A V = Λ - (V*P)(V*P)*      (diagonal plus low rank, DPLR)
    V* B

which is what S4 learns (Λ, V*P, V*B), and S4D keeps only the diagonal Λ. Everything here runs
once, at initialisation, in float64.
"""

from __future__ import annotations

import torch


def legs_matrices(N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The HiPPO-LegS pair (A: (N, N), B: (N,)), float64."""
    q = torch.sqrt(2.0 * torch.arange(N, dtype=torch.float64) + 1.0)  # √(2n+1)
    A = -(q[:, None] * q[None, :]).tril(-1) - torch.diag(torch.arange(1, N + 1, dtype=torch.float64))
    return A, q.clone()


def legs_low_rank(N: int) -> torch.Tensor:
    """P with A + P Pᵀ normal: P_n = √(n + ½), (N,) float64."""
    return torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5)


def legs_dplr(N: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """HiPPO-LegS in the eigenbasis of its normal part: (Λ, P̃ = V*P, B̃ = V*B, V), complex128.

    V* A V = diag(Λ) - P̃ P̃*, with Λ = -½ + iω in conjugate pairs.
    """
    A, B = legs_matrices(N)
    P = legs_low_rank(N)
    S = A + P[:, None] * P[None, :]  # -½ I + skew
    skew = S + 0.5 * torch.eye(N, dtype=torch.float64)
    # skew = i·(-i·skew) and -i·skew is Hermitian: eigh gives real ω and a unitary V
    omega, V = torch.linalg.eigh(-1j * skew.to(torch.complex128))
    Lambda = torch.complex(torch.full_like(omega, -0.5), omega)
    Vh = V.conj().T
    return Lambda, Vh @ P.to(torch.complex128), Vh @ B.to(torch.complex128), V



def conjugate_half(Lambda: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """One mode of each conjugate pair (Im Λ > 0), in order of Im Λ: (Λ, *others) restricted to those N/2 modes.

    HiPPO-LegS is real, so for even N its eigenvalues Λ = -½ ± iω pair up, and V*B (V*P) of the partner is the
    conjugate: the other half of every vector is the conjugate of this one.
    """
    keep = torch.nonzero(Lambda.imag > 0).flatten()
    if 2 * keep.numel() != Lambda.numel():
        raise ValueError(f"HiPPO-LegS with N={Lambda.numel()} has no exact pairing into conjugates (N must be even)")
    keep = keep[Lambda.imag[keep].argsort()]
    return (Lambda[keep], *(t[keep] for t in others))
