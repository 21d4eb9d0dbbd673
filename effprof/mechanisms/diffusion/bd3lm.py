"""BD3-LM: block diffusion (Arriola et al. 2025, "Block Diffusion: Interpolating Between Autoregressive
and Diffusion Language Models").

The sequence is cut into blocks of B = block_len tokens; blocks are generated left to right
(autoregressive over blocks) and each block by masked diffusion (S = diffusion_steps reverse steps
with low-confidence remasking, sampling.py) conditioned on the clean earlier blocks:

    log p_θ(x) = Σ_β log p_θ(x^β | x^{<β})      p_θ(x^β | x^{<β}): a masked-diffusion denoiser

Attention is block-causal: token i sees token j iff β(j) ≤ β(i) (bidirectional inside a block,
causal across blocks), so the K, V of finished blocks never change and are cached.
Blocks are aligned at position 0 of the prompt (its last block may be shorter); generated blocks
follow the prompt, B tokens each (gen_len must be a multiple of B).

Generation of g tokens after a prompt of n tokens:

    prepare (once, not measured):  prompt ids; one block-causal pass over the prompt caches its K, V
    clean ← ∅
    for β = 1 … g/B:
        x^β ← [M … M]
        for s = 0 … S−1:                                one denoiser pass each
            s = 0, β > 1: queries [clean ; x^β]: block β−1 (now clean) writes its K, V into the
                   cache (block-causally, never seeing x^β); x^β sees the cache, block β−1, itself
            otherwise: queries x^β only, reading the cache and x^β
            x^β ← remask_step(x^β, logits of x^β, k_s),   k_s = ⌊B/S⌋ + 1[s < B mod S]
        clean ← x^β
    forward_passes = (g/B)·S; the cache is never written by noised tokens.

Training (vectorised, as in the paper): one pass over the 2n tokens [x_t ; x₀] with the mask
    x_t^β → x_t^β (its own noised block),  x_t^β → x₀^{<β},  x₀^β → x₀^{≤β},  x₀ ↛ x_t
(x_t and x₀ tokens share positions), t ~ U(0, 1] per block, loss = the masked-diffusion objective
on the x_t half (objective.py):  L(θ) = −E[Σ_β 1/t_β Σ_{i∈β} 1[x_tⁱ = M] log p_θ(x₀ⁱ | x_t^β, x₀^{<β})].

Cost per generated token (the prompt's pass excluded, as for every causal mechanism), with
P(T, K) = n_layers·(c₁·T + c₂·T·K) for a pass of T queries over K keys:
    FLOPs/token = [ S·P(B, n + B)                                     block 1: the cached prompt
                  + Σ_{β=2}^{g/B} P(2B, n + βB)                         step 0: [block β−1 ; block β]
                  + (S − 1)·Σ_{β=2}^{g/B} P(B, n + βB)                  steps 1 … S−1
                  + S·(g/B)·(2·B·d·V + sampler) ] / g                  read-out and remasking
Every pass holds at most 2B queries over at most n + g keys: O(B·(n + g)) attention with the
cache, so at fixed B, S, g the cost per token is linear in n (exponent 1, like the AR baseline's
one O(n) query per token; a block of B tokens runs 2B + (S − 1)·B queries, so ≈ (S + 1)× the
AR baseline's work per token at large n).
The dense masks compute every (query, key) pair, masked ones included.

Special cases: B = g, one block: LLaDA over the answer with a cached prompt. B = 1, S = 1: one
token per pass, the cache of an AR decoder over the same denoiser (block-causal with B = 1 is
causal), but the next token is read from a [MASK] query at the new position, not from the
previous token's state (tests/test_diffusion.py checks what holds exactly).

Glossary: as denoiser.py; B block_len, β a block index, S diffusion_steps, x₀ clean ids,
x_t noised ids, t_β the masking ratio of block β, c₁ ≈ 24·d², c₂ ≈ 4·d + 5·h.
"""

from __future__ import annotations

from typing import Any

import torch

from effprof.config import ConfigError
from effprof.mechanisms.base import Mechanism
from effprof.mechanisms.diffusion import cost
from effprof.mechanisms.diffusion.ar_baseline import kv_cache_bytes
from effprof.mechanisms.diffusion.denoiser import DENOISER_DEFAULTS, Denoiser, cache_length, resolve_denoiser
from effprof.mechanisms.diffusion.objective import mask_tokens, masked_diffusion_loss
from effprof.mechanisms.diffusion.sampling import remask_step, transfer_schedule
from effprof.registry import Claim, Cost, MechanismSpec, Paper, TestHooks, register


def expand_blocks(block_level: torch.Tensor, block_len: int, n: int) -> torch.Tensor:
    """(β, β) block-level booleans -> (n, n) token-level: each entry becomes a B×B tile, cut to n."""
    nb = block_level.shape[0]
    tiles = block_level[:, None, :, None].expand(nb, block_len, nb, block_len)  # (β, B, β, B)
    return tiles.reshape(nb * block_len, nb * block_len)[:n, :n]


def block_causal_mask(n: int, block_len: int, device: torch.device | str) -> torch.Tensor:
    """(n, n): query i sees key j iff j // B ≤ i // B."""
    nb = -(-n // block_len)
    return expand_blocks(torch.ones(nb, nb, dtype=torch.bool, device=device).tril(), block_len, n)


def training_mask(n: int, block_len: int, device: torch.device | str) -> torch.Tensor:
    """(2n, 2n) over [x_t ; x₀]: x_t^β sees x_t^β and x₀^{<β}; x₀^β sees x₀^{≤β}."""
    nb = -(-n // block_len)
    ones = torch.ones(nb, nb, dtype=torch.bool, device=device)
    same = expand_blocks(torch.eye(nb, dtype=torch.bool, device=device), block_len, n)  # x_t^β → x_t^β
    earlier = expand_blocks(ones.tril(-1), block_len, n)  # x_t^β → x₀^{<β}
    upto = expand_blocks(ones.tril(), block_len, n)  # x₀^β → x₀^{≤β}
    never = torch.zeros(n, n, dtype=torch.bool, device=device)  # x₀ → x_t
    return torch.cat([torch.cat([same, earlier], dim=1), torch.cat([never, upto], dim=1)], dim=0)


def first_step_mask(past: int, clean: int, block_len: int, device: torch.device | str) -> torch.Tensor:
    """(c + B, p + c + B) for queries [clean ; noised] over keys [cache ; clean ; noised]."""
    clean_rows = torch.cat([
        torch.ones(clean, past, dtype=torch.bool, device=device),  # every cached (earlier) block
        block_causal_mask(clean, block_len, device),  # the clean tokens among themselves
        torch.zeros(clean, block_len, dtype=torch.bool, device=device),  # never the noised block
    ], dim=1)
    noised_rows = torch.ones(block_len, past + clean + block_len, dtype=torch.bool, device=device)
    return torch.cat([clean_rows, noised_rows], dim=0)


class BD3LM(Mechanism):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.denoiser = Denoiser(config)
        self.block_len, self.diffusion_steps = config["block_len"], config["diffusion_steps"]
        self.temperature = config["temperature"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block-causal hidden states of clean tokens: what the prompt's pass computes."""
        return self.denoiser.hidden(x, mask=block_causal_mask(x.shape[1], self.block_len, x.device))

    def training_loss(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.denoiser.tokenize(x)  # (b, n)
        b, n = x0.shape
        nb = -(-n // self.block_len)
        t = (1 - torch.rand(b, nb, device=x.device)).repeat_interleave(self.block_len, dim=1)[:, :n]  # t_β per token
        xt, masked = mask_tokens(x0, t, self.denoiser.mask_id)
        positions = torch.arange(n, device=x.device).repeat(2)  # x_t and x₀ share positions
        ids = torch.cat([xt, x0], dim=1)  # (b, 2n)
        h, _ = self.denoiser.run(self.denoiser.embedding(ids), positions, mask=training_mask(n, self.block_len, x.device))
        return masked_diffusion_loss(self.denoiser.logits(h[:, :n]), x0, masked, t)

    def prepare(self, x: torch.Tensor) -> dict[str, Any]:
        """The prompt's pass, done once: prompt ids (b, n) and their block-causal KV cache (n tokens)."""
        prompt = self.denoiser.tokenize(x)  # (b, n)
        n = prompt.shape[1]
        mask = block_causal_mask(n, self.block_len, x.device)
        _, cache = self.denoiser.run(self.denoiser.embedding(prompt), torch.arange(n, device=x.device), mask=mask)
        return {"prompt": prompt, "cache": cache}

    def generate(self, context: dict[str, Any], gen_len: int) -> dict[str, Any]:
        """(g/B)·S passes from prepare()'s context (left unchanged: run() returns new caches)."""
        B, prompt_cache = self.block_len, context["cache"]
        prompt = context["prompt"]  # (b, n)
        batch, n, device = prompt.shape[0], prompt.shape[1], prompt.device
        cache, clean = prompt_cache, None  # clean: the finished block not yet cached, (b, B)
        schedule = transfer_schedule(B, self.diffusion_steps)
        blocks, passes = [], 0
        for start in range(n, n + gen_len, B):
            block = torch.full((batch, B), self.denoiser.mask_id, device=device, dtype=prompt.dtype)  # x^β
            block_positions = torch.arange(start, start + B, device=device)
            for s, k in enumerate(schedule):
                if s == 0 and clean is not None:  # block β−1 joins the cache in the same pass
                    ids = torch.cat([clean, block], dim=1)  # (b, 2B)
                    positions = torch.arange(start - B, start + B, device=device)
                    mask = first_step_mask(cache_length(cache), B, B, device)  # (2B, c + 2B)
                    h, cache = self.denoiser.run(self.denoiser.embedding(ids), positions, cache, mask=mask, keep=B)
                else:  # the noised block reads the cache and itself; nothing is cached
                    h, _ = self.denoiser.run(self.denoiser.embedding(block), block_positions, cache, keep=0)
                passes += 1
                block = remask_step(block, self.denoiser.logits(h[:, -B:]), k, self.temperature, self.denoiser.mask_id)
            blocks.append(block)
            clean = block
        # state: the KV cache after the prompt's pass (the decode state of ARCHITECTURE.md § Mechanisms), as for every causal mechanism
        return {"forward_passes": passes, "tokens": torch.cat(blocks, dim=1), "state": prompt_cache}


def _validate(config: dict[str, Any]) -> None:
    resolve_denoiser(config)
    B, g, S = config["block_len"], config["gen_len"], config["diffusion_steps"]
    if g % B:
        raise ConfigError(f"gen_len={g} is not a multiple of block_len={B}; accepted: gen_len = k·block_len")
    if S > B:
        raise ConfigError(
            f"diffusion_steps={S} exceeds block_len={B}; every step unmasks at least one token, so accepted: 1 … block_len"
        )


def bd3lm_cost(config: dict[str, Any], mode: str) -> Cost:
    passes = {"forward_passes": cost.forward_passes(config, "bd3lm")}
    return Cost(cost.bd3lm_flops(config, mode), kv_cache_bytes(config, config["seq_len"]), passes)


@register(
    MechanismSpec(
        name="bd3lm",
        complexity={"prefill": "O(N²·d + N·d²)", "train": "O(N²·d + N·d²)", "decode": "O(S·N·d) per token", "state": "O(N·d) KV cache"},
        family="diffusion",
        summary="Block diffusion LM: blocks of block_len tokens left to right with a KV cache, diffusion_steps passes per block",
        paper=Paper("Block Diffusion: Interpolating Between Autoregressive and Diffusion Language Models", 2025, "2503.09573"),
        causal=False,
        generates=True,
        defaults={**DENOISER_DEFAULTS, "block_len": 4, "diffusion_steps": 2},
        cost=bd3lm_cost,
        validate=_validate,
        tests=TestHooks(overrides={"gen_len": 8, "block_len": 4, "diffusion_steps": 2}),
        claims=(
            Claim("flops", "seq_len", 2.0, "forward"),
            Claim("flops", "seq_len", 2.0, "train"),
            Claim("flops", "seq_len", 1.0, "decode"),  # O(B·n) attention per pass (the prompt's pass not counted)
            Claim("state_bytes", "seq_len", 1.0, "decode"),
            Claim("forward_passes", "gen_len", 1.0, "decode"),
            Claim("forward_passes", "diffusion_steps", 1.0, "decode"),
        ),
    )
)
def build_bd3lm(config: dict[str, Any]) -> BD3LM:
    return BD3LM(config)
