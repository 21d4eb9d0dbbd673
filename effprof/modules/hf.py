"""Hugging Face transformers layers from a config, as effprof modules: `--module hf:<model_type>.<layer>`.

Whole models (`hf:llama`, `hf:llama-2-7b`, ...) are in modules/hf_models.py.

Needs the extra `pip install 'effprof[hf]'` (transformers). No weights and no network:
each layer is built from a config object holding effprof's keys, with freshly
initialised weights, and given the inputs it needs beside the hidden states
(rotary position embeddings, the sliding-window mask) built once per point, as a
model builds them once for all its layers.

Key mapping (effprof key -> transformers config field; defaults match effprof's own
mechanism of the same kind, so the cross-checks compare like with like):

    target               effprof keys (default)                      transformers fields
    hf:llama.attention   d_model, n_heads (2), n_kv_heads (n_heads),   hidden_size, num_attention_heads,
                         head_dim (d_model/n_heads)                    num_key_value_heads, head_dim
    hf:llama.decoder_layer  the above and d_ff (4·d_model)             ... and intermediate_size
    hf:mistral.attention the attention keys and window (64)            ... and sliding_window
    hf:mamba.mixer       d_model, d_state (16), expand (2), d_conv (4) hidden_size, state_size, expand,
                                                                       conv_kernel (time_step_rank = ⌈d_model/16⌉)
    hf:mamba2.mixer      d_model, d_state (16), expand (2), d_conv (4), hidden_size, state_size, expand, conv_kernel,
                         n_heads (4), chunk_size (64)                  num_heads, head_dim = expand·d_model/n_heads,
                                                                       n_groups = 1, chunk_size
    hf:mixtral.moe       d_model, d_ff (256), n_experts (8), top_k (2) hidden_size, intermediate_size,
                                                                       num_local_experts, num_experts_per_tok

Attention runs with attn_implementation="sdpa" (torch's fused kernel, as effprof's
softmax_attention impl=sdpa). The Mamba mixers run their pure-torch paths on CPU (the
CUDA kernels of mamba-ssm / causal-conv1d are used by transformers only when installed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from effprof.config import ConfigError

INSTALL_HINT = "pip install 'effprof[hf]' (transformers)"


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"--module hf:... needs transformers, which is not installed; {INSTALL_HINT}") from None
    transformers.logging.set_verbosity_error()  # its notes on missing CUDA kernels would fill every sweep's output
    return transformers


def _heads(d_model: int, n_heads: int, n_kv_heads: int | None, head_dim: int | None) -> tuple[int, int, int]:
    n_kv_heads = n_kv_heads or n_heads
    if head_dim is None:
        if d_model % n_heads:
            raise ConfigError(f"d_model={d_model} is not divisible by n_heads={n_heads}; pick n_heads dividing d_model or set head_dim")
        head_dim = d_model // n_heads
    if n_heads % n_kv_heads:
        raise ConfigError(f"n_kv_heads={n_kv_heads} does not divide n_heads={n_heads}; accepted: a divisor of n_heads")
    return n_heads, n_kv_heads, head_dim


def _llama_config(model_type: str, d_model: int, n_heads: int, n_kv_heads: int | None, head_dim: int | None, d_ff: int | None,
                  **extra: Any):
    transformers = _transformers()
    n_heads, n_kv_heads, head_dim = _heads(d_model, n_heads, n_kv_heads, head_dim)
    config_class = {"llama": transformers.LlamaConfig, "mistral": transformers.MistralConfig}[model_type]
    config = config_class(hidden_size=d_model, num_attention_heads=n_heads, num_key_value_heads=n_kv_heads, head_dim=head_dim,
                          intermediate_size=d_ff or 4 * d_model, num_hidden_layers=1, vocab_size=16, **extra)
    config._attn_implementation = "sdpa"
    return config


def _rotary(model_type: str, config, batch: int, seq_len: int) -> tuple[Any, Any]:
    """(cos, sin) of positions 0..seq_len-1, as the model computes once per forward for all layers."""
    import torch

    module = __import__(f"transformers.models.{model_type}.modeling_{model_type}", fromlist=["_"])
    rotary = getattr(module, f"{model_type.capitalize()}RotaryEmbedding")(config=config)
    x = torch.zeros(batch, seq_len, config.hidden_size)
    positions = torch.arange(seq_len).unsqueeze(0).expand(batch, -1)
    return rotary(x, positions)


def llama_attention(d_model: int, batch: int, seq_len: int, n_heads: int = 2, n_kv_heads: int | None = None,
                    head_dim: int | None = None):
    """Llama's attention (GQA, rotary embeddings, no bias), transformers' LlamaAttention."""
    from transformers.models.llama.modeling_llama import LlamaAttention

    config = _llama_config("llama", d_model, n_heads, n_kv_heads, head_dim, None)
    return LlamaAttention(config, layer_idx=0), {"position_embeddings": _rotary("llama", config, batch, seq_len), "attention_mask": None}


def llama_decoder_layer(d_model: int, batch: int, seq_len: int, n_heads: int = 2, n_kv_heads: int | None = None,
                        head_dim: int | None = None, d_ff: int | None = None):
    """A Llama decoder layer: RMSNorm, attention, residual, RMSNorm, SwiGLU MLP, residual (LlamaDecoderLayer)."""
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    config = _llama_config("llama", d_model, n_heads, n_kv_heads, head_dim, d_ff)
    return LlamaDecoderLayer(config, layer_idx=0), {"position_embeddings": _rotary("llama", config, batch, seq_len)}


def mistral_attention(d_model: int, batch: int, seq_len: int, n_heads: int = 2, n_kv_heads: int | None = None,
                      head_dim: int | None = None, window: int = 64):
    """Mistral's sliding-window attention: each query sees the last `window` keys, itself included (MistralAttention)."""
    import torch
    from transformers.models.mistral.modeling_mistral import MistralAttention

    config = _llama_config("mistral", d_model, n_heads, n_kv_heads, head_dim, None, sliding_window=window)
    i = torch.arange(seq_len)
    allowed = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < window)  # (query, key): causal, within the window
    inputs = {"position_embeddings": _rotary("mistral", config, batch, seq_len), "attention_mask": allowed[None, None]}
    return MistralAttention(config, layer_idx=0), inputs


def mamba_mixer(d_model: int, d_state: int = 16, expand: int = 2, d_conv: int = 4):
    """Mamba's selective-SSM block (MambaMixer): in_proj, causal conv, selective scan, gate, out_proj."""
    transformers = _transformers()
    from transformers.models.mamba.modeling_mamba import MambaMixer

    config = transformers.MambaConfig(hidden_size=d_model, state_size=d_state, expand=expand, conv_kernel=d_conv,
                                      time_step_rank="auto", use_mambapy=False, num_hidden_layers=1, vocab_size=16)
    return MambaMixer(config, layer_idx=0)


def mamba2_mixer(d_model: int, d_state: int = 16, expand: int = 2, d_conv: int = 4, n_heads: int = 4, chunk_size: int = 64):
    """Mamba-2's SSD block (Mamba2Mixer): one group of B, C shared by the heads, gated RMSNorm, chunked SSD."""
    transformers = _transformers()
    from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer

    if (expand * d_model) % n_heads:
        raise ConfigError(f"n_heads={n_heads} does not divide expand·d_model={expand * d_model}; accepted: a divisor of it")
    config = transformers.Mamba2Config(hidden_size=d_model, state_size=d_state, expand=expand, conv_kernel=d_conv, num_heads=n_heads,
                                       head_dim=expand * d_model // n_heads, n_groups=1, chunk_size=chunk_size,
                                       num_hidden_layers=1, vocab_size=16)
    return Mamba2Mixer(config, layer_idx=0)


def mixtral_moe(d_model: int, d_ff: int = 256, n_experts: int = 8, top_k: int = 2):
    """Mixtral's sparse MoE block: softmax router, top-k experts per token, SwiGLU experts (MixtralSparseMoeBlock)."""
    transformers = _transformers()
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    if top_k > n_experts:
        raise ConfigError(f"top_k={top_k} exceeds n_experts={n_experts}; accepted: top_k <= n_experts")
    config = transformers.MixtralConfig(hidden_size=d_model, intermediate_size=d_ff, num_local_experts=n_experts,
                                        num_experts_per_tok=top_k, num_hidden_layers=1, vocab_size=16)
    return MixtralSparseMoeBlock(config), {}  # (module, inputs): its output may be (hidden, router_logits)


LAYERS: dict[str, Callable[..., Any]] = {
    "llama.attention": llama_attention,
    "llama.decoder_layer": llama_decoder_layer,
    "mistral.attention": mistral_attention,
    "mamba.mixer": mamba_mixer,
    "mamba2.mixer": mamba2_mixer,
    "mixtral.moe": mixtral_moe,
}


def hf_factory(layer: str) -> tuple[Callable[..., Any], str]:
    """(factory, summary) of `model_type.layer`; ConfigError listing the layers, or naming the missing extra."""
    from effprof.modules.hf_models import model_factory, model_names

    if layer not in LAYERS:
        from effprof.suggest import accepted

        _transformers()
        factory = model_factory(layer)
        if factory is None:
            known = ["hf:" + name for name in (*LAYERS, *model_names())]
            raise ConfigError(f"--module {'hf:' + layer!r} is not a known layer or model" + accepted("hf:" + layer, known))
        return factory, f"transformers: {factory.__doc__}"
    _transformers()
    factory = LAYERS[layer]
    return factory, f"transformers: {(factory.__doc__ or '').strip().splitlines()[0]}"
