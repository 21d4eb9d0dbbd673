"""Analytic FLOP models of the diffusion family, op by op as the denoiser and the samplers run them.

One denoiser pass over T new tokens whose queries see K keys each (cached ones included), per layer:
    LN₁ 7·bTd,  Q K V O projections 8·bT·d·h·d_h,  attention b·h·P·(4·d_h + 5)  (P pairs: T·K, or the
    causal triangle),  residual bTd,  LN₂ 7·bTd,  FFN 4·bT·d·f + GELU bTf,  residual bTd
plus the position encoding (1.5·T·d for ω·p, sin, cos; bTd to add it), the final LN (7·d per read
token) and the head (2·d·V per read token). A reverse step over m answer tokens adds its sampler:
argmax bmV, softmax 5·bmV (the confidence), [MASK] test bm, top-k bm, and 6·bmV of Gumbel noise at
temperature > 0. Mapping the prompt to ids costs 2·bnd·V + bnV (x Eᵀ, argmax): in train mode only,
since in decode it belongs to prepare().

Train = forward + backward of the objective: the weighted cross-entropy is log_softmax (5 per
logit) + nll (1 per logit), then ·1[masked] / t, a sum and ÷ b·L; backward 3 per logit and ~3 per row.
Decode = one generate() call ÷ gen_len. The prompt's share (its ids; for the AR baseline the KV
cache of its first n − 1 tokens, for BD3-LM that of all n) is prepare()'s, made once and not
counted, like every causal mechanism's prefill.

Glossary: b batch, n seq_len (prompt), g gen_len, L = n + g, d d_model, h n_heads, d_h head_dim,
f d_ff, V vocab_size, S diffusion_steps, B block_len, T / K query / key tokens of a pass.
"""

from __future__ import annotations

from typing import Any

from effprof.cost_model import Tally
from effprof.mechanisms.attention import _attention_core


def _pass(t: Tally, config: dict[str, Any], queries: int, keys: int, causal: bool = False) -> None:
    """Position encoding + n_layers layers over `queries` new tokens, each seeing `keys` keys."""
    b, d, f = config["batch"], config["d_model"], config["d_ff"]
    inner = config["n_heads"] * config["head_dim"]
    tokens = b * queries
    t.add(1.5 * queries * d, 0)  # PE: ω·p, sin, cos (once for the batch)
    t.elementwise(tokens * d, 1, 0)  # h⁰ = E[x] + PE; the gradient passes through
    attention_config = {**config, "impl": "sdpa", "n_kv_heads": config["n_heads"]}
    for _ in range(config["n_layers"]):
        _layer_norm(t, tokens * d)  # LN₁
        for _ in range(3):
            t.linear(tokens, d, inner)  # Q, K, V
        t.add(0, 2 * tokens * d)  # dLN₁: the gradients through Q, K and V are summed
        _attention_core(t, attention_config, queries, keys, causal)
        t.linear(tokens, inner, d)  # O
        t.elementwise(tokens * d, 1, 1)  # u = h + …; backward: dh from the residual and LN₁ summed
        _layer_norm(t, tokens * d)  # LN₂
        t.linear(tokens, d, f)  # W₁
        t.elementwise(tokens * f, 1, 1)  # GELU; backward gelu_backward
        t.linear(tokens, f, d)  # W₂
        t.elementwise(tokens * d, 1, 1)  # h = u + …; backward: du from the residual and LN₂ summed


def _layer_norm(t: Tally, numel: float) -> None:
    t.add(7 * numel, 11 * numel)  # mean, centre, variance (2), normalise, γ, β; backward dx 8, dγ 2, dβ 1


def _read_out(t: Tally, config: dict[str, Any], tokens: int) -> None:
    """logits = W_out LN(h) for `tokens` positions of the whole batch."""
    _layer_norm(t, tokens * config["d_model"])
    t.linear(tokens, config["d_model"], config["vocab_size"])


def _tokenize(t: Tally, config: dict[str, Any]) -> None:
    """argmax_v x·E[v] over the n input positions (no gradient)."""
    rows = config["batch"] * config["seq_len"]
    t.add(2.0 * rows * config["d_model"] * config["vocab_size"] + rows * config["vocab_size"], 0)


def _sample(t: Tally, config: dict[str, Any], rows: int) -> None:
    """sample_tokens over `rows` positions: Gumbel noise (log, neg, log, neg, ÷T, +G) at T > 0, argmax."""
    logits = rows * config["vocab_size"]
    t.add((6 * logits if config["temperature"] > 0 else 0) + logits, 0)


def _remask(t: Tally, config: dict[str, Any], answer: int) -> None:
    """remask_step over `answer` positions per sequence."""
    rows = config["batch"] * answer
    _sample(t, config, rows)
    t.add(5 * rows * config["vocab_size"], 0)  # softmax: the confidence of each proposal
    t.add(2 * rows, 0)  # [MASK] test, top-k (a reduction over the m positions)


def _cross_entropy(t: Tally, config: dict[str, Any], rows: int, weighted: bool) -> None:
    """−log p_θ(target) over `rows` positions, then the masked-diffusion weights or a mean."""
    logits = rows * config["vocab_size"]
    t.add(5 * logits + logits, 3 * logits)  # log_softmax + nll; backward log_softmax's (nll's is below)
    if weighted:  # (nll · 1[masked] / t).sum() / (b·L); backward: ÷ scalar, ÷ t, · 1[masked], nll
        t.add(3 * rows + 1, 3 * rows + 1)
    else:  # mean: the nll kernel's reduction; backward over one scalar gradient
        t.add(0, 1)


def _embedding_backward(t: Tally, config: dict[str, Any], tokens: int) -> None:
    t.add(0, tokens * config["d_model"])  # each row's gradient is added into its token's row of E


def _final(t: Tally, config: dict[str, Any], tokens: int) -> None:
    """The contract's forward ends with LN(h) over every token."""
    _layer_norm(t, tokens * config["d_model"])


def forward_passes(config: dict[str, Any], sampler: str) -> int:
    """Denoiser passes of one generation: AR g, LLaDA S, BD3-LM (g/B)·S."""
    if sampler == "ar":
        return config["gen_len"]
    if sampler == "llada":
        return config["diffusion_steps"]
    return config["gen_len"] // config["block_len"] * config["diffusion_steps"]


# ----------------------------------------------------------------------------- llada


def llada_flops(config: dict[str, Any], mode: str) -> float:
    b, n, g = config["batch"], config["seq_len"], config["gen_len"]
    t = Tally()
    if mode == "decode":
        for _ in range(config["diffusion_steps"]):  # one pass over all L = n + g tokens per step (no cache)
            _pass(t, config, n + g, n + g)
            _read_out(t, config, b * g)
            _remask(t, config, g)
        return t.forward / g
    if mode == "train":
        _tokenize(t, config)
        t.add(b + b * n, 0)  # t = 1 − u per sequence; u < t per token
        _embedding_backward(t, config, b * n)
        _pass(t, config, n, n)
        _read_out(t, config, b * n)
        _cross_entropy(t, config, b * n, weighted=True)
        return t.total(mode)
    _pass(t, config, n, n)
    _final(t, config, b * n)
    return t.forward


# ----------------------------------------------------------------------------- ar_baseline


def ar_flops(config: dict[str, Any], mode: str) -> float:
    b, n, g = config["batch"], config["seq_len"], config["gen_len"]
    t = Tally()
    if mode == "decode":
        for i in range(g):  # pass i: one token at position n − 1 + i over the n − 1 + i cached keys and itself
            _pass(t, config, 1, n + i)
        _read_out(t, config, b * g)
        _sample(t, config, b * g)
        return t.forward / g
    if mode == "train":
        _tokenize(t, config)
        _embedding_backward(t, config, b * n)
        _pass(t, config, n, n, causal=True)
        _read_out(t, config, b * (n - 1))  # position i predicts token i + 1
        _cross_entropy(t, config, b * (n - 1), weighted=False)
        return t.total(mode)
    _pass(t, config, n, n, causal=True)
    _final(t, config, b * n)
    return t.forward


# ----------------------------------------------------------------------------- bd3lm


def bd3lm_flops(config: dict[str, Any], mode: str) -> float:
    b, n, g, B = config["batch"], config["seq_len"], config["gen_len"], config["block_len"]
    blocks = -(-n // B)
    t = Tally()
    if mode == "decode":  # the prompt's n tokens are cached by prepare()
        for block in range(g // B):
            keys = n + (block + 1) * B  # the cache (prompt and earlier blocks) and the block itself
            for step in range(config["diffusion_steps"]):
                if step == 0 and block > 0:  # [block β−1 ; noised] queries over [cache ; β−1 ; noised] (a dense mask)
                    _pass(t, config, 2 * B, keys)
                else:  # the noised block over the cache and itself
                    _pass(t, config, B, keys)
                _read_out(t, config, b * B)
                _remask(t, config, B)
        return t.forward / g
    if mode == "train":
        _tokenize(t, config)
        t.add(b * blocks + b * n, 0)  # t_β = 1 − u per block; u < t per token
        _embedding_backward(t, config, 2 * b * n)
        _pass(t, config, 2 * n, 2 * n)  # [x_t ; x₀] under the block-diffusion mask (every pair computed)
        _read_out(t, config, b * n)  # the x_t half
        _cross_entropy(t, config, b * n, weighted=True)
        return t.total(mode)
    _pass(t, config, n, n)  # block-causal via a dense mask: every pair computed
    _final(t, config, b * n)
    return t.forward
