"""Whole Hugging Face decoder models from a config, without weights: `hf:llama`, `hf:llama-2-7b`, ...

    effprof profile hf:llama-2-7b --count-only --seq-len 4096            # prefill of a published model
    effprof profile hf:llama-2-7b --count-only --mode decode --seq-len 32768 --param gen_len=1
    effprof profile hf:mixtral --count-only -p n_layers=2 -p d_model=1024  # the architecture at any size

Two kinds of target:
- an architecture (`hf:llama`, `hf:mistral`, `hf:mixtral`, `hf:mamba`, `hf:mamba2`, `hf:jamba`): transformers'
  *ForCausalLM built from effprof's keys (d_model, n_layers, n_heads, n_kv_heads, d_ff, n_experts, top_k,
  d_state, ...) at small defaults;
- a published checkpoint (`hf:llama-2-7b`, ...; PUBLISHED in modules/hf_configs.py): the config.json of its
  Hugging Face repository written down as a dict with its source, and the same keys as overrides
  (`-p n_layers=2`); its own width and dtype are the defaults.

No weights are downloaded and no network is used: the model is built from the config with fresh
initialisation. A published model is meant to be counted (--count-only): its weights are never
allocated then, and it is probed on fake tensors too.

The model is called the way effprof calls a mechanism, with x: (batch, seq_len, d_model) as the input
embeddings (the token embedding is a lookup, 0 FLOPs, as in the published formulas) and the logits
(batch, seq_len, vocab) as output, the LM head included:
- forward: logits = model(inputs_embeds=x, use_cache=True).logits: a prefill as served (transformers then calls
  the causal attention kernel; without a cache it passes an explicit mask and all n² pairs are computed)
- train: cross-entropy of the logits against fixed random next tokens (training_loss), backpropagated
- decode: the model's own cache (DynamicCache, MambaCache, Jamba's hybrid cache): prefill(x) runs the prompt
  with use_cache=True; step(x_t, state) feeds one embedding with that cache. A step first crops a KV cache back
  to the state's length, so replaying the same steps (effprof times a decode more than once) does the same work.
- the breakdown shows every layer: the decoder layers are ModuleList children (model.layers.0, model.layers.1, ...).

MoE experts run transformers' grouped_mm form (experts_implementation="grouped_mm"): every token's rows meet their
expert's weights in one grouped matmul, whose FLOPs (2·rows·K·N) do not depend on how tokens split across experts,
so a count needs no routing data and takes no assumption. torch's fake grouped_mm takes bfloat16 only: count
Mixtral and Jamba in dtype=bfloat16 (their published dtype, the default of the published targets).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from effprof.config import ConfigError


class CausalLM(nn.Module):
    """A transformers causal LM as an effprof module: input embeddings in, logits out, the model's own cache in decode."""

    causal = True  # a decoder: its probe skips the causality check, which needs data (the probe may run on fakes)

    def __init__(self, model: nn.Module, seed: int = 0):
        super().__init__()
        self.model = model
        self.vocab_size = int(model.config.vocab_size)
        self.is_mamba = model.config.model_type in ("mamba", "mamba2")
        self.seed = seed

    def output_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        return (*x.shape[:-1], self.vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a prefill as served: with the cache on, transformers calls the causal attention kernel (with it off it
        # passes an explicit mask, and the kernel computes all n² pairs); the cache is dropped after
        return self.model(inputs_embeds=x, use_cache=not self.training).logits  # (b, n, vocab)

    def training_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Next-token cross-entropy against fixed random tokens (the same on every call)."""
        b, n, _ = x.shape
        generator = torch.Generator().manual_seed(self.seed)
        targets = torch.randint(self.vocab_size, (b, n), generator=generator).to(x.device)  # (b, n)
        logits = self(x)  # (b, n, vocab)
        return nn.functional.cross_entropy(logits.reshape(b * n, -1).float(), targets.reshape(-1))

    # decode: the model's own cache
    def init_state(self, batch: int) -> dict[str, Any]:
        return {"cache": None, "length": 0, "tensors": []}

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        out = self.model(inputs_embeds=x, use_cache=True)
        cache = out.cache_params if self.is_mamba else out.past_key_values
        return out.logits, {"cache": cache, "length": x.shape[1], "tensors": cache_tensors(cache)}

    def step(self, x_t: torch.Tensor, state: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        cache, length = state["cache"], state["length"]
        position = torch.tensor([length], device=x_t.device)
        if self.is_mamba:  # a fixed-size state, updated in place
            out = self.model(inputs_embeds=x_t, cache_params=cache, use_cache=True, cache_position=position)
            return out.logits, {"cache": out.cache_params, "length": length + 1}
        if hasattr(cache, "crop") and cache.get_seq_length() > length:  # a replay of the same steps
            cache.crop(length)
        out = self.model(inputs_embeds=x_t, past_key_values=cache, use_cache=True, cache_position=position)
        return out.logits, {"cache": out.past_key_values, "length": length + 1}


def cache_tensors(cache: Any, depth: int = 4) -> list[torch.Tensor]:
    """Every tensor a transformers cache holds (keys and values per layer, conv and SSM states), each once."""
    found: dict[int, torch.Tensor] = {}

    def walk(value: Any, level: int) -> None:
        if isinstance(value, torch.Tensor):
            found.setdefault(id(value), value)
        elif level and isinstance(value, (list, tuple)):
            for item in value:
                walk(item, level - 1)
        elif level and isinstance(value, dict):
            for item in value.values():
                walk(item, level - 1)
        elif level and hasattr(value, "__dict__") and not isinstance(value, (nn.Module, type)):
            for item in vars(value).values():
                walk(item, level - 1)

    walk(cache, depth)
    return list(found.values())


def _transformers():
    from effprof.modules.hf import _transformers as load

    return load()


def _architecture_config(model_type: str, values: dict[str, Any]):
    """A transformers config of `model_type` from published fields (or none) with effprof's keys on top."""
    transformers = _transformers()
    config_class = {"llama": transformers.LlamaConfig, "mistral": transformers.MistralConfig, "mixtral": transformers.MixtralConfig,
                    "mamba": transformers.MambaConfig, "mamba2": transformers.Mamba2Config, "jamba": transformers.JambaConfig}[model_type]
    fields = dict(values)
    if model_type in ("mixtral", "jamba"):
        fields["experts_implementation"] = "grouped_mm"
    if model_type in ("mamba", "jamba"):
        fields["use_mambapy"] = False  # the plain torch path, as transformers runs on CPU without mamba-ssm
    if model_type == "jamba":
        fields["use_mamba_kernels"] = False
    config = config_class(**fields)
    if model_type not in ("mamba", "mamba2"):
        config._attn_implementation = "sdpa"
    return config


# effprof key -> the transformers field it sets, per model type
KEY_FIELDS: dict[str, dict[str, str]] = {
    "llama": {"d_model": "hidden_size", "n_layers": "num_hidden_layers", "n_heads": "num_attention_heads",
              "n_kv_heads": "num_key_value_heads", "d_ff": "intermediate_size"},
    "mamba": {"d_model": "hidden_size", "n_layers": "num_hidden_layers", "d_state": "state_size", "expand": "expand",
              "d_conv": "conv_kernel"},
    "mamba2": {"d_model": "hidden_size", "n_layers": "num_hidden_layers", "d_state": "state_size", "expand": "expand",
               "d_conv": "conv_kernel", "n_heads": "num_heads", "chunk_size": "chunk_size"},
}
KEY_FIELDS["mistral"] = {**KEY_FIELDS["llama"], "window": "sliding_window"}
KEY_FIELDS["mixtral"] = {**KEY_FIELDS["llama"], "n_experts": "num_local_experts", "top_k": "num_experts_per_tok"}
KEY_FIELDS["jamba"] = {**KEY_FIELDS["llama"], "n_experts": "num_experts", "top_k": "num_experts_per_tok", "d_state": "mamba_d_state",
                       "d_conv": "mamba_d_conv", "expand": "mamba_expand"}

# Small defaults of the architecture targets (effprof keys); a published target's defaults are its config's.
SMALL: dict[str, dict[str, Any]] = {
    "llama": {"d_model": 128, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "d_ff": 256, "vocab_size": 256},
    "mamba": {"d_model": 128, "n_layers": 2, "d_state": 16, "expand": 2, "d_conv": 4, "vocab_size": 256},
    "mamba2": {"d_model": 128, "n_layers": 2, "d_state": 16, "expand": 2, "d_conv": 4, "n_heads": 4, "chunk_size": 64, "vocab_size": 256},
}
SMALL["mistral"] = {**SMALL["llama"], "window": 64}
SMALL["mixtral"] = {**SMALL["llama"], "n_experts": 4, "top_k": 2}
SMALL["jamba"] = {**SMALL["mixtral"], "n_layers": 4, "d_state": 16, "d_conv": 4, "expand": 2}
ARCH_FIELDS = {"mamba2": {"head_dim": None, "n_groups": 1},  # head_dim = expand·d_model/n_heads, set below
               "jamba": {"attn_layer_period": 2, "attn_layer_offset": 1, "expert_layer_period": 2, "expert_layer_offset": 1}}


def _fields(model_type: str, keys: dict[str, Any]) -> dict[str, Any]:
    """transformers fields from effprof keys (vocab_size passes through)."""
    mapping = KEY_FIELDS[model_type]
    fields = {mapping.get(k, k): v for k, v in keys.items() if v is not None}
    if model_type == "mamba2":
        fields["head_dim"] = fields.get("expand", 2) * fields["hidden_size"] // fields.get("num_heads", 1)
        if (fields.get("expand", 2) * fields["hidden_size"]) % fields.get("num_heads", 1):
            raise ConfigError(f"n_heads={fields.get('num_heads')} does not divide expand·d_model={fields.get('expand', 2) * fields['hidden_size']}")
    return fields


def _check_grouped(model_type: str, dtype: str) -> None:
    from effprof.runtime import counting as count_only

    if model_type in ("mixtral", "jamba") and count_only.active() and dtype != "bfloat16":
        raise NotImplementedError(f"count-only {model_type}: torch's fake grouped_mm (the experts) takes bfloat16 only; "
                                  "count with dtype=bfloat16")


def _build(model_type: str, fields: dict[str, Any], dtype: str) -> CausalLM:
    _check_grouped(model_type, dtype)
    transformers = _transformers()
    config = _architecture_config(model_type, fields)
    model_class = {"llama": transformers.LlamaForCausalLM, "mistral": transformers.MistralForCausalLM,
                   "mixtral": transformers.MixtralForCausalLM, "mamba": transformers.MambaForCausalLM,
                   "mamba2": transformers.Mamba2ForCausalLM, "jamba": transformers.JambaForCausalLM}[model_type]
    return CausalLM(model_class(config))


def architecture_factory(model_type: str) -> Callable[..., Any]:
    """The factory of `hf:<model_type>`: effprof's keys (small defaults) -> CausalLM."""
    small = SMALL[model_type]
    arch = ARCH_FIELDS.get(model_type, {})

    def factory(d_model: int = small["d_model"], dtype: str = "float32", **keys: Any) -> CausalLM:
        values = {**small, **{k: v for k, v in keys.items() if k in small}, "d_model": d_model}
        fields = {**{k: v for k, v in arch.items() if v is not None}, **_fields(model_type, values)}
        return _build(model_type, fields, dtype)

    import inspect

    parameters = [inspect.Parameter("d_model", inspect.Parameter.KEYWORD_ONLY, default=small["d_model"]),
                  inspect.Parameter("dtype", inspect.Parameter.KEYWORD_ONLY, default="float32")]
    parameters += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in small.items() if k != "d_model"]
    factory.__signature__ = inspect.Signature(parameters)
    factory.__doc__ = f"transformers' {model_type} causal LM (whole model) built from effprof's keys; no weights"
    factory.count_probe = True
    return factory


def published_factory(name: str) -> Callable[..., Any]:
    """The factory of a published checkpoint: its config.json fields, effprof's keys as overrides."""
    import inspect

    from effprof.modules.hf_configs import PUBLISHED

    entry = PUBLISHED[name]
    model_type, fields = entry["model_type"], entry["config"]
    mapping = KEY_FIELDS[model_type]
    own = {key: fields[field] for key, field in mapping.items() if field in fields}  # effprof's view of the config

    def factory(**keys: Any) -> CausalLM:
        dtype = keys.pop("dtype", entry["dtype"])
        overrides = {mapping[k]: v for k, v in keys.items() if k in mapping and v is not None and v != own.get(k)}
        merged = {**fields, **overrides}
        if model_type == "mamba2" and "hidden_size" in overrides:
            merged["num_heads"] = merged["expand"] * merged["hidden_size"] // merged["head_dim"]
        return _build(model_type, merged, dtype)

    parameters = [inspect.Parameter("dtype", inspect.Parameter.KEYWORD_ONLY, default=entry["dtype"])]
    parameters += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in own.items()]
    factory.__signature__ = inspect.Signature(parameters)
    factory.__doc__ = f"{entry['title']} from its published config ({entry['source']}); no weights"
    factory.count_probe = True
    return factory


MODEL_TYPES = ("llama", "mistral", "mixtral", "mamba", "mamba2", "jamba")


def model_factory(name: str) -> Callable[..., Any] | None:
    """The factory of `hf:<name>` for a whole model, or None when `name` is not one."""
    from effprof.modules.hf_configs import PUBLISHED

    if name in MODEL_TYPES:
        return architecture_factory(name)
    if name in PUBLISHED:
        return published_factory(name)
    return None


def model_names() -> tuple[str, ...]:
    from effprof.modules.hf_configs import PUBLISHED

    return (*MODEL_TYPES, *PUBLISHED)
