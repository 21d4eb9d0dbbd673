"""LLaDA: masked diffusion language modelling (Nie et al. 2025, "Large Language Diffusion Models").

A bidirectional transformer (the denoiser, denoiser.py) reads the whole sequence, prompt and
answer, and predicts every masked token at once.

Generation of g tokens after a prompt of n tokens, S = diffusion_steps reverse steps:

    x_1 = [prompt ; M … M]                              L = n + g tokens, the answer all [MASK]
    for s = 0 … S−1:                                    one denoiser pass over all L tokens each
        logits = W_out LN(h(x))[n:]                     p_θ(· | x) at the g answer positions
        x = remask_step(x, logits, k_s)                 low-confidence remasking (sampling.py):
                                                        unmask the k_s most confident proposals
    k_s = ⌊g/S⌋ + 1[s < g mod S]                        (LLaDA's schedule; Σ k_s = g)

Training: the masked-diffusion objective (objective.py), t ~ U(0, 1] per sequence:
    L(θ) = −E_{t,x₀,x_t}[1/t Σᵢ 1[x_tⁱ = M] log p_θ(x₀ⁱ | x_t)]

Decode: prepare(x) maps the prompt to ids once (the prompt's share, not measured); generate()
then runs the S passes. There is no KV cache: the answer changes every step and attention is
bidirectional, so every pass re-reads the prompt. forward_passes = S whatever g; each pass costs
O(L·d²) (projections, FFN) + O(L²·d) (attention over all L tokens). Per generated token:
    FLOPs/token = S/g · [n_layers·(c₁·L + c₂·L²) + g·(2·d·V + sampler)] ,  L = n + g
so at fixed S and g it grows as n² once the attention term dominates (n ≳ 6·d), and ∝ S.

Glossary: b batch, n seq_len (prompt), g gen_len, L = n + g, S diffusion_steps, V vocab_size,
d d_model, M [MASK]; c₁ ≈ 24·d² (4 attention projections, FFN of width 4d), c₂ ≈ 4·d + 5·h.

Inputs: forward(x) reads x (b, n, d) as token embeddings (positions added) and returns the
denoiser's final hidden states; prepare() and training_loss() map x to token ids by the
nearest embedding (Denoiser.tokenize). No KV cache, so there is no decode state.
"""

from __future__ import annotations

from typing import Any

import torch

from effprof.config import ConfigError
from effprof.mechanisms.base import Mechanism
from effprof.mechanisms.diffusion import cost
from effprof.mechanisms.diffusion.denoiser import DENOISER_DEFAULTS, Denoiser, resolve_denoiser
from effprof.mechanisms.diffusion.objective import mask_tokens, masked_diffusion_loss
from effprof.mechanisms.diffusion.sampling import remask_step, transfer_schedule
from effprof.registry import Claim, Cost, MechanismSpec, Paper, TestHooks, register


class LLaDA(Mechanism):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.denoiser = Denoiser(config)
        self.diffusion_steps, self.temperature = config["diffusion_steps"], config["temperature"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.denoiser.hidden(x)  # bidirectional: every token sees every token

    def training_loss(self, x: torch.Tensor) -> torch.Tensor:
        """The masked-diffusion loss of x's tokens x₀, one t ~ U(0, 1] per sequence."""
        x0 = self.denoiser.tokenize(x)  # (b, n)
        t = 1 - torch.rand(x0.shape[0], 1, device=x.device)  # (b, 1): U(0, 1]
        xt, masked = mask_tokens(x0, t, self.denoiser.mask_id)  # (b, n) each
        positions = torch.arange(x0.shape[1], device=x.device)
        h, _ = self.denoiser.run(self.denoiser.embedding(xt), positions)  # (b, n, d)
        return masked_diffusion_loss(self.denoiser.logits(h), x0, masked, t)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The prompt's share of decoding, done once: (b, n, d) embeddings -> (b, n) prompt ids."""
        return self.denoiser.tokenize(x)

    def start(self, prompt: torch.Tensor, gen_len: int) -> torch.Tensor:
        """x_1 = [prompt ; M … M]: (b, n) prompt ids -> (b, n + g) ids (a new tensor)."""
        answer = torch.full((prompt.shape[0], gen_len), self.denoiser.mask_id, device=prompt.device, dtype=prompt.dtype)
        return torch.cat([prompt, answer], dim=1)

    def reverse_step(self, ids: torch.Tensor, gen_len: int, k: int) -> torch.Tensor:
        """One denoiser pass over all (b, L) ids; unmask the k most confident answer tokens."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        h, _ = self.denoiser.run(self.denoiser.embedding(ids), positions)  # (b, L, d): no mask, no cache
        logits = self.denoiser.logits(h[:, -gen_len:])  # (b, g, V)
        answer = remask_step(ids[:, -gen_len:], logits, k, self.temperature, self.denoiser.mask_id)
        return torch.cat([ids[:, :-gen_len], answer], dim=1)

    def generate(self, prompt: torch.Tensor, gen_len: int) -> dict[str, Any]:
        """prompt: (b, n) ids from prepare(), left unchanged -> the g answer ids after S reverse steps."""
        ids = self.start(prompt, gen_len)
        schedule = transfer_schedule(gen_len, self.diffusion_steps)
        for k in schedule:
            ids = self.reverse_step(ids, gen_len, k)
        return {"forward_passes": len(schedule), "tokens": ids[:, -gen_len:]}


def _validate(config: dict[str, Any]) -> None:
    resolve_denoiser(config)
    if config["diffusion_steps"] > config["gen_len"]:
        raise ConfigError(
            f"diffusion_steps={config['diffusion_steps']} exceeds gen_len={config['gen_len']}; "
            "every step unmasks at least one token, so accepted: 1 … gen_len"
        )


def llada_cost(config: dict[str, Any], mode: str) -> Cost:
    return Cost(cost.llada_flops(config, mode), 0.0, {"forward_passes": cost.forward_passes(config, "llada")})


@register(
    MechanismSpec(
        name="llada",
        complexity={"prefill": "O(N²·d + N·d²)", "train": "O(N²·d + N·d²)", "decode": "O(S·L²·d / g) per token, L = N + g", "state": "none (no cache)"},
        family="diffusion",
        summary=(
            "Masked diffusion LM: a bidirectional denoiser, diffusion_steps passes over prompt + answer "
            "with low-confidence remasking"
        ),
        paper=Paper("Large Language Diffusion Models", 2025, "2502.09992"),
        causal=False,
        generates=True,
        defaults={**DENOISER_DEFAULTS, "diffusion_steps": 4},
        cost=llada_cost,
        validate=_validate,
        tests=TestHooks(overrides={"gen_len": 8, "diffusion_steps": 4}),
        claims=(
            Claim("flops", "seq_len", 2.0, "forward"),
            Claim("flops", "seq_len", 2.0, "train"),
            Claim("flops", "seq_len", 2.0, "decode"),  # S passes over L = n + g tokens, O(L²) attention each
            Claim("flops", "diffusion_steps", 1.0, "decode"),
            Claim("forward_passes", "gen_len", 0.0, "decode"),
            Claim("forward_passes", "diffusion_steps", 1.0, "decode"),
        ),
    )
)
def build_llada(config: dict[str, Any]) -> LLaDA:
    return LLaDA(config)
