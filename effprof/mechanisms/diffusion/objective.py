"""The masked-diffusion training objective (LLaDA; per block in BD3-LM).

    L(θ) = −E_{t, x₀, x_t} [ 1/t Σᵢ₌₁ᴸ 1[x_tⁱ = M] log p_θ(x₀ⁱ | x_t) ]

Forward process: draw t ~ U(0, 1] (per sequence in LLaDA, per block in BD3-LM) and replace each
token of x₀ by [MASK] independently with probability t, giving x_t. The denoiser predicts every
masked token from x_t; the loss is the cross-entropy on the masked positions weighted by 1/t, an
upper bound on the negative log-likelihood. The estimator averages over the batch and, as LLaDA's
pretraining code does, divides by L (a per-token figure):

    L̂ = 1/(b·L) Σ_seq Σᵢ 1[x_tⁱ = M] · (−log p_θ(x₀ⁱ | x_t)) / tⁱ

Glossary: b batch, L sequence length, t the masking ratio (tⁱ: that of token i's sequence or block),
M the [MASK] id, x₀ clean ids, x_t noised ids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mask_tokens(x0: torch.Tensor, t: torch.Tensor, mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x0: (b, L) ids, t: (b, L) masking ratio per token -> x_t: (b, L), masked: (b, L) bool."""
    masked = torch.rand(x0.shape, device=x0.device) < t  # 1[x_tⁱ = M], each token with probability t
    return torch.where(masked, mask_id, x0), masked


def masked_diffusion_loss(logits: torch.Tensor, x0: torch.Tensor, masked: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """logits: (b, L, V), x0: (b, L), masked: (b, L), t: (b, L) or (b, 1) -> L̂, a scalar."""
    b, L = x0.shape
    nll = F.cross_entropy(logits.flatten(0, 1), x0.flatten(), reduction="none").view(b, L)  # −log p_θ(x₀ⁱ|x_t)
    return (nll * masked / t).sum() / (b * L)
