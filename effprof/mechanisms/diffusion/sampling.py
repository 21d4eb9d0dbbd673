"""One reverse step of masked diffusion with LLaDA's low-confidence remasking, and its schedule.

Reverse step s of S over m answer positions, k_s of them unmasked in this step:

    x̂₀ⁱ  = argmax_v (log p_θ(v | x_t)ⁱ / T + Gⁱ_v)   Gumbel-max sample (T = temperature; T = 0: argmax)
    cⁱ   = p_θ(x̂₀ⁱ | x_t)  if x_tⁱ = M,  −∞ otherwise   confidence of the proposal
    U    = top-k_s positions by cⁱ                      the most confident masked positions
    x_sⁱ = x̂₀ⁱ  if i ∈ U,  x_tⁱ otherwise               the other proposals are re-masked

    schedule (LLaDA's get_num_transfer_tokens): k_s = ⌊m/S⌋ + 1[s < m mod S],  Σ_s k_s = m,
    so every step unmasks exactly k_s tokens and the answer is fully unmasked after S steps.

Glossary: b batch, m answer length (gen_len for LLaDA, block_len for a BD3-LM block), V vocab_size,
S diffusion_steps, M the [MASK] id, G standard Gumbel noise −log(−log u), u ~ U(0, 1).
"""

from __future__ import annotations

import torch


def transfer_schedule(length: int, steps: int) -> list[int]:
    """k_s for s = 0..steps-1: tokens unmasked in each reverse step, the first (length mod steps) one more."""
    base, extra = divmod(length, steps)
    return [base + (1 if s < extra else 0) for s in range(steps)]


def sample_tokens(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """(…, V) logits -> (…,) ids: argmax at temperature 0, else the Gumbel-max sample of softmax(logits / T)."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    u = torch.rand_like(logits)  # (…, V)
    gumbel = -torch.log(-torch.log(u))  # G = −log(−log u)
    return (logits / temperature + gumbel).argmax(dim=-1)


def remask_step(answer: torch.Tensor, logits: torch.Tensor, k: int, temperature: float, mask_id: int) -> torch.Tensor:
    """answer: (b, m) ids with [MASK]s, logits: (b, m, V) -> answer with the k most confident masked ids filled."""
    proposal = sample_tokens(logits, temperature)  # x̂₀: (b, m)
    confidence = torch.softmax(logits, dim=-1).gather(-1, proposal[..., None])[..., 0]  # p_θ(x̂₀ⁱ | x_t): (b, m)
    still_masked = answer == mask_id  # (b, m)
    confidence = torch.where(still_masked, confidence, float("-inf"))  # only masked positions compete
    chosen = confidence.topk(k, dim=-1).indices  # U: (b, k)
    unmask = torch.zeros_like(still_masked).scatter(-1, chosen, True)  # (b, m)
    return torch.where(unmask, proposal, answer)
