"""The autoregressive baseline: the diffusion family's denoiser run as a causal LM (GPT-style decoding).

    p_θ(x_{i+1} | x_{≤i}) = softmax(W_out LN(h_i)),   h from causal attention (key j visible to query i iff j ≤ i)

Generation of g tokens after a prompt of n tokens, with a KV cache:

    prepare (once, not measured):  prompt ids x_1 … x_n; one causal pass over x_1 … x_{n−1}
              caches their K, V (the prefill); x_n is kept to be fed first
    pass i = 0 … g−1:  one query: x_n for i = 0, then the token pass i−1 sampled, at position
              n−1+i (0-based); it reads the n−1+i cached keys and its own, caches its K, V and
              samples x_{n+i+1} from its final state
    forward_passes = g, one O(n+i) pass per generated token (the last token is never fed back).

Prefill split: prepare stops one token short of the prompt so that every generated token costs
exactly one decoding pass, the first included (caching all n tokens would leave the first token
to the prefill's logits and g − 1 passes). The cache after pass 0 holds the n prompt tokens: that
is the decode state reported (ARCHITECTURE.md § Mechanisms: the state after a prefill of seq_len tokens).

Training: next-token cross-entropy, −1/(b·(n−1)) Σ_seq Σ_{i<n} log p_θ(x_{i+1} | x_{≤i}).

Cost per generated token (the prefill excluded, as for every causal mechanism), with
P(1, K) = n_layers·(c₁ + c₂·K) for one query over K keys:
    FLOPs/token = [Σ_{i=0}^{g−1} P(1, n + i) + g·(2·d·V + sampler)] / g
                = n_layers·(c₁ + c₂·(n + (g−1)/2)) + 2·d·V + sampler
linear in n: O(n) attention per pass, exponent 1 in seq_len once c₂·n outgrows c₁ (n ≳ 6·d).
The KV cache holds 2·n_layers·b·h·n·d_h numbers after the prompt, O(n).

Glossary: as denoiser.py; c₁ ≈ 24·d², c₂ ≈ 4·d + 5·h per (query, key) pair.

Inputs: forward / prefill / step read x as token embeddings (positions added, step at the position
after the cache) and return the final hidden states; prepare() and training_loss() map x to
token ids by the nearest embedding (Denoiser.tokenize).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from effprof.cost_model import dtype_bytes
from effprof.mechanisms.base import Mechanism
from effprof.mechanisms.diffusion import cost
from effprof.mechanisms.diffusion.denoiser import DENOISER_DEFAULTS, Denoiser, KVCache, cache_length, resolve_denoiser
from effprof.mechanisms.diffusion.sampling import sample_tokens
from effprof.registry import Claim, Cost, MechanismSpec, Paper, TestHooks, register


class ARBaseline(Mechanism):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.denoiser = Denoiser(config)
        self.temperature = config["temperature"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.denoiser.hidden(x, causal=True)

    def init_state(self, batch: int) -> KVCache:
        return self.denoiser.empty_cache(batch)

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, KVCache]:
        positions = torch.arange(x.shape[1], device=x.device)
        h, cache = self.denoiser.run(x, positions, causal=True)  # (b, n, d)
        return self.denoiser.norm(h), cache

    def step(self, x_t: torch.Tensor, state: KVCache) -> tuple[torch.Tensor, KVCache]:
        """x_t: (b, 1, d) at the position after the cache; its query reads every cached key."""
        positions = torch.arange(cache_length(state), cache_length(state) + 1, device=x_t.device)
        h, cache = self.denoiser.run(x_t, positions, cache=state)  # (b, 1, d)
        return self.denoiser.norm(h), cache

    def training_loss(self, x: torch.Tensor) -> torch.Tensor:
        ids = self.denoiser.tokenize(x)  # (b, n)
        positions = torch.arange(ids.shape[1], device=x.device)
        h, _ = self.denoiser.run(self.denoiser.embedding(ids), positions, causal=True)  # (b, n, d)
        logits = self.denoiser.logits(h[:, :-1])  # (b, n−1, V): position i predicts token i+1
        return F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())

    def prepare(self, x: torch.Tensor) -> dict[str, Any]:
        """The prefill, done once: prompt ids, the KV cache of the first n − 1 prompt tokens, and the
        last prompt token (b, 1), which generate() feeds first."""
        prompt = self.denoiser.tokenize(x)  # (b, n)
        n = prompt.shape[1]
        if n > 1:
            positions = torch.arange(n - 1, device=x.device)
            _, cache = self.denoiser.run(self.denoiser.embedding(prompt[:, :-1]), positions, causal=True)  # n − 1 cached
        else:
            cache = self.denoiser.empty_cache(x.shape[0])
        return {"prompt": prompt, "cache": cache, "last": prompt[:, -1:]}

    def generate(self, context: dict[str, Any], gen_len: int) -> dict[str, Any]:
        """g passes of one token each from prepare()'s context (left unchanged: run() returns new caches)."""
        cache, token = context["cache"], context["last"]  # (b, 1): x_n first
        tokens, prompt_cache = [], None
        for _i in range(gen_len):
            position = torch.arange(cache_length(cache), cache_length(cache) + 1, device=token.device)  # n − 1 + i
            h, cache = self.denoiser.run(self.denoiser.embedding(token), position, cache=cache)  # (b, 1, d)
            prompt_cache = cache if prompt_cache is None else prompt_cache  # K, V of the n prompt tokens
            token = sample_tokens(self.denoiser.logits(h), self.temperature)  # x_{n+i+1}: (b, 1)
            tokens.append(token)
        # state: the KV cache of the whole prompt (the decode state of ARCHITECTURE.md § Mechanisms), as for every causal mechanism
        return {"forward_passes": gen_len, "tokens": torch.cat(tokens, dim=1), "state": prompt_cache}


def kv_cache_bytes(config: dict[str, Any], tokens: int) -> float:
    """K and V of `tokens` tokens in every layer."""
    b, h, d_h = config["batch"], config["n_heads"], config["head_dim"]
    return 2 * config["n_layers"] * b * h * tokens * d_h * dtype_bytes(config)


def ar_cost(config: dict[str, Any], mode: str) -> Cost:
    passes = {"forward_passes": cost.forward_passes(config, "ar")}
    return Cost(cost.ar_flops(config, mode), kv_cache_bytes(config, config["seq_len"]), passes)


@register(
    MechanismSpec(
        name="ar_baseline",
        complexity={"prefill": "O(N²·d + N·d²)", "train": "O(N²·d + N·d²)", "decode": "O(N·d) per token", "state": "O(N·d) KV cache"},
        family="diffusion",
        summary="Autoregressive baseline: the diffusion denoiser as a causal LM, token-by-token decoding with a KV cache",
        paper=Paper("Language Models are Few-Shot Learners", 2020, "2005.14165"),
        causal=True,
        generates=True,
        defaults=dict(DENOISER_DEFAULTS),
        cost=ar_cost,
        validate=resolve_denoiser,
        tests=TestHooks(overrides={"gen_len": 8}),
        claims=(
            Claim("flops", "seq_len", 2.0, "forward"),
            Claim("flops", "seq_len", 2.0, "train"),
            Claim("flops", "seq_len", 1.0, "decode"),  # one pass per token, O(n) attention each (prefill not counted)
            Claim("state_bytes", "seq_len", 1.0, "decode"),
            Claim("forward_passes", "gen_len", 1.0, "decode"),
        ),
    )
)
def build_ar_baseline(config: dict[str, Any]) -> ARBaseline:
    return ARBaseline(config)
