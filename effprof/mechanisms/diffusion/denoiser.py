"""The denoiser every diffusion-family model shares: a small pre-norm transformer over token ids.

    h⁰_i   = E[x_i] + PE(p_i)                               token embedding + sinusoidal position
    u^ℓ    = h^{ℓ-1} + MultiHead(LN(h^{ℓ-1}))               attention over the visible keys (below)
    h^ℓ    = u^ℓ + W₂ GELU(W₁ LN(u^ℓ))                      feed-forward
    p_θ(· | x) = softmax(W_out LN(h^{n_layers}))            over the V real tokens (never [MASK])

    PE(p) = [sin(p·ω_j), cos(p·ω_j)]_{j < d/2},  ω_j = 10000^{-2j/d}

Glossary: b batch, n seq_len (the prompt), g gen_len, V vocab_size (the real tokens; id V is [MASK]),
d d_model, h n_heads, d_h head_dim, f d_ff, ℓ a layer.

Which keys a query sees is the model's choice, passed to `run`:
- every key (LLaDA's bidirectional denoiser, a query block reading a KV cache),
- causal (the AR baseline),
- an explicit boolean mask (block-causal BD3-LM; True = may attend).
`run` can start from a KV cache (the K and V of earlier tokens, per layer) and returns the cache
extended by the first `keep` new tokens: a decoder keeps clean tokens and drops noised ones.

Inputs are (b, n, d) embeddings (the mechanism contract); a model that needs token ids (the
samplers, the training objectives) maps them to the nearest embedding by inner product,
x_i ↦ argmax_v x_i·E[v] (`tokenize`), a deterministic map onto the V real tokens.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from effprof.config import ConfigError, declare_key
from effprof.mechanisms.attention import SoftmaxAttention
from effprof.mechanisms.base import merge_heads

declare_key("vocab_size", int, "vocabulary of a built-in token embedding and output head (diffusion LMs)")
declare_key("temperature", float, "sampling temperature: 0 greedy (argmax), > 0 Gumbel-max sampling", positive=False)

# One layer's cache: {"key": (b, h, c, d_h), "value": (b, h, c, d_h)}; the model's: a tuple over layers.
KVCache = tuple[dict[str, torch.Tensor], ...]

DENOISER_DEFAULTS: dict[str, Any] = {
    "n_layers": 2, "n_heads": 2, "head_dim": None, "d_ff": None, "vocab_size": 256, "temperature": 0.0,
}


class DenoiserBlock(nn.Module):
    """One pre-norm transformer layer; attention projections are SoftmaxAttention's (fused sdpa kernel)."""

    def __init__(self, d_model: int, n_heads: int, head_dim: int, d_ff: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = SoftmaxAttention(d_model, n_heads, n_heads, head_dim, impl="sdpa", block_size=128)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn_in = nn.Linear(d_model, d_ff, bias=False)  # W₁
        self.ffn_out = nn.Linear(d_ff, d_model, bias=False)  # W₂

    def forward(
        self, h: torch.Tensor, past: dict[str, torch.Tensor], mask: torch.Tensor | None, causal: bool, keep: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """h: (b, T, d) new tokens; past: K, V of c cached tokens -> (b, T, d) and the cache with `keep` more."""
        q, k_new, v_new = self.attention._qkv(self.norm1(h))  # (b, h, T, d_h) each
        k = torch.cat([past["key"], k_new], dim=2)  # (b, h, c+T, d_h)
        v = torch.cat([past["value"], v_new], dim=2)
        if mask is None:
            o = self.attention.attend(q, k, v, causal)  # (b, h, T, d_h)
        else:
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # mask: (T, c+T), True = visible
        u = h + self.attention.o_proj(merge_heads(o))  # (b, T, d)
        out = u + self.ffn_out(F.gelu(self.ffn_in(self.norm2(u))))  # (b, T, d)
        c = past["key"].shape[2]
        if keep == k_new.shape[2]:
            return out, {"key": k, "value": v}
        if keep == 0:
            return out, past
        # the cache keeps the first `keep` new tokens only (clean ones); a compact copy, not a view of k
        return out, {"key": k[:, :, : c + keep].contiguous(), "value": v[:, :, : c + keep].contiguous()}


class Denoiser(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        d, vocab = config["d_model"], config["vocab_size"]
        self.vocab_size, self.mask_id = vocab, vocab  # ids 0..V-1 are tokens, V is [MASK]
        self.n_heads, self.head_dim = config["n_heads"], config["head_dim"]
        self.embedding = nn.Embedding(vocab + 1, d)  # E: (V+1, d)
        self.blocks = nn.ModuleList(
            DenoiserBlock(d, config["n_heads"], config["head_dim"], config["d_ff"]) for _ in range(config["n_layers"])
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)  # W_out: (V, d)
        frequencies = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)  # ω: (d/2,)
        self.register_buffer("frequencies", frequencies, persistent=False)

    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """(b, n, d) embeddings -> (b, n) ids of the nearest real token by inner product."""
        with torch.no_grad():
            return (x.detach() @ self.embedding.weight[: self.vocab_size].T).argmax(dim=-1)  # (b, n, V) -> (b, n)

    def position_encoding(self, positions: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(T,) positions -> PE: (T, d), computed in float32."""
        angles = positions.to(torch.float32)[:, None] * self.frequencies.to(torch.float32)[None, :]  # (T, d/2)
        return torch.cat([angles.sin(), angles.cos()], dim=-1).to(dtype)

    def empty_cache(self, batch: int) -> KVCache:
        w = self.embedding.weight
        empty = w.new_zeros(batch, self.n_heads, 0, self.head_dim)
        return tuple({"key": empty, "value": empty} for _ in self.blocks)

    def run(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        cache: KVCache | None = None,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        keep: int | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """x: (b, T, d) embeddings of new tokens at `positions` (T,) -> last layer's h: (b, T, d), new cache.

        Keys visible to the new queries: the cached ones and the new ones, all of them (mask None,
        causal False), causally (from an empty cache, or one query), or where `mask` (T, c+T) is True.
        The cache keeps `keep` new tokens (default all of them).
        """
        cache = cache if cache is not None else self.empty_cache(x.shape[0])
        keep = x.shape[1] if keep is None else keep
        h = x + self.position_encoding(positions, x.dtype)  # h⁰: (b, T, d)
        new_cache = []
        for block, past in zip(self.blocks, cache, strict=False):
            h, layer_cache = block(h, past, mask, causal, keep)
            new_cache.append(layer_cache)
        return h, tuple(new_cache)

    def hidden(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        """The contract's forward: (b, n, d) input embeddings -> LN(h^{n_layers}): (b, n, d)."""
        positions = torch.arange(x.shape[1], device=x.device)
        return self.norm(self.run(x, positions, mask=mask, causal=causal)[0])

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """(b, T, d) last-layer states -> (b, T, V) logits over the real tokens."""
        return self.head(self.norm(h))


def cache_length(cache: KVCache) -> int:
    return cache[0]["key"].shape[2]


def resolve_denoiser(config: dict[str, Any]) -> None:
    """Fill d_ff (default 4·d_model) and check the sizes the denoiser needs (a spec's `validate`)."""
    if config["d_ff"] is None:
        config["d_ff"] = 4 * config["d_model"]
    if config["d_model"] % 2:
        raise ConfigError(f"d_model={config['d_model']} is odd; the sinusoidal position encoding needs an even d_model")
    if config["temperature"] < 0 or math.isnan(config["temperature"]):
        raise ConfigError(f"temperature={config['temperature']} is negative; accepted: 0 (greedy) or a positive number")
