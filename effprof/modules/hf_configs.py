"""Published configs of well-known checkpoints: the fields of each Hugging Face repository's config.json that
shape the model, written down with their source (no download; `hf:<name>` builds the model from them,
modules/hf_models.py). `dtype` is the checkpoint's torch_dtype.

Fields left out take transformers' defaults, which match these checkpoints (rope, norms, activations).
"""

from __future__ import annotations

from typing import Any

PUBLISHED: dict[str, dict[str, Any]] = {
    "llama-2-7b": {
        "title": "Llama-2-7B", "model_type": "llama", "dtype": "float16",
        "source": "https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json",
        "config": {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
                   "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
                   "tie_word_embeddings": False},
    },
    "llama-3-8b": {
        "title": "Llama-3-8B", "model_type": "llama", "dtype": "bfloat16",
        "source": "https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json",
        "config": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                   "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
                   "rope_theta": 500000.0, "tie_word_embeddings": False},
    },
    "mistral-7b": {
        "title": "Mistral-7B-v0.1", "model_type": "mistral", "dtype": "bfloat16",
        "source": "https://huggingface.co/mistralai/Mistral-7B-v0.1/blob/main/config.json",
        "config": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                   "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 32768, "rms_norm_eps": 1e-5,
                   "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": False},
    },
    "mixtral-8x7b": {
        "title": "Mixtral-8x7B-v0.1", "model_type": "mixtral", "dtype": "bfloat16",
        "source": "https://huggingface.co/mistralai/Mixtral-8x7B-v0.1/blob/main/config.json",
        "config": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                   "num_key_value_heads": 8, "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000,
                   "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "rope_theta": 1e6, "sliding_window": None,
                   "tie_word_embeddings": False},
    },
    "mamba-2.8b": {
        "title": "Mamba-2.8B", "model_type": "mamba", "dtype": "float32",
        "source": "https://huggingface.co/state-spaces/mamba-2.8b-hf/blob/main/config.json",
        "config": {"hidden_size": 2560, "num_hidden_layers": 64, "state_size": 16, "expand": 2, "conv_kernel": 4,
                   "vocab_size": 50280, "time_step_rank": 160, "tie_word_embeddings": True},
    },
    "jamba-v0.1": {
        "title": "Jamba-v0.1", "model_type": "jamba", "dtype": "bfloat16",
        "source": "https://huggingface.co/ai21labs/Jamba-v0.1/blob/main/config.json",
        "config": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                   "num_key_value_heads": 8, "num_experts": 16, "num_experts_per_tok": 2, "expert_layer_period": 2,
                   "expert_layer_offset": 1, "attn_layer_period": 8, "attn_layer_offset": 4, "mamba_d_state": 16,
                   "mamba_d_conv": 4, "mamba_expand": 2, "mamba_dt_rank": 256, "vocab_size": 65536,
                   "max_position_embeddings": 262144, "rms_norm_eps": 1e-6, "tie_word_embeddings": False},
    },
}
