"""Config keys: one name each, everywhere (ARCHITECTURE.md § Config keys).

Every key a mechanism accepts is declared here once, with its type and a line
of documentation that `effprof list` shows. A family that needs a new key calls
`declare_key` at import time; a key declared twice is an error.

`resolve_config` turns user overrides (Python values or CLI strings) into the
full, validated config a mechanism is built from.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A bad config value: the message names the value and what is accepted."""


@dataclass(frozen=True)
class KeyInfo:
    name: str
    type: type  # int, float or str
    doc: str
    positive: bool = True  # ints/floats must be > 0 (None allowed where the default is None)


KEYS: dict[str, KeyInfo] = {}


def declare_key(name: str, type_: type, doc: str, positive: bool = True) -> None:
    if name in KEYS:
        raise ValueError(f"config key {name!r} is declared twice")
    KEYS[name] = KeyInfo(name, type_, doc, positive)


for _name, _type, _doc, _positive in [
    ("batch", int, "sequences per call", True),
    ("seq_len", int, "tokens per sequence (the prefill length in decode mode)", True),
    ("d_model", int, "model width: input and output features", True),
    ("n_heads", int, "attention / SSM heads", True),
    ("n_kv_heads", int, "key/value heads (MQA/GQA); default n_heads", True),
    ("head_dim", int, "features per head; default d_model // n_heads", True),
    ("impl", str, "algorithmic form; every impl computes the same function", True),
    ("chunk_size", int, "tokens per chunk in chunked forms", True),
    ("feature_map", str, "linear-attention kernel feature map phi", True),
    ("n_features", int, "random features per head (performer)", True),
    ("d_state", int, "SSM state size per channel (N in the papers)", True),
    ("expand", int, "inner width multiplier of an SSM block", True),
    ("d_conv", int, "causal depthwise convolution width", True),
    ("window", int, "local attention window (keys per query, itself included)", True),
    ("dilation", int, "gap between attended keys in a dilated window", True),
    ("stride", int, "stride of strided sparse patterns", True),
    ("n_global", int, "global tokens that attend to and are attended by all", False),
    ("block_size", int, "tokens per block (tiled / block-sparse forms)", True),
    ("n_random_blocks", int, "random key blocks per query block", False),
    ("n_buckets", int, "LSH buckets", True),
    ("n_hashes", int, "LSH hashing rounds", True),
    ("n_clusters", int, "k-means clusters for routing attention", True),
    ("top_k", int, "keys / experts kept per query / token", True),
    ("n_experts", int, "experts in a mixture-of-experts layer", True),
    ("capacity_factor", float, "expert capacity multiplier; <= 0 means no limit", False),
    ("d_ff", int, "hidden width of a feed-forward network", True),
    ("n_layers", int, "layers in a stack", True),
    ("pattern", str, "layer pattern of a hybrid stack; strided|fixed for sparse_transformer", True),
    ("diffusion_steps", int, "reverse diffusion steps", True),
    ("block_len", int, "tokens per block in block diffusion", True),
    ("gen_len", int, "tokens generated in decode mode", True),
    ("dtype", str, "float32, float16 or bfloat16 (also fp32, fp16, bf16)", True),
    ("device", str, "cpu, cuda or cuda:N", True),
    ("compile", str, "torch.compile mode of a compiled variant: none (eager), default, reduce-overhead, max-autotune, "
                     "max-autotune-no-cudagraphs; any mechanism or module takes it", True),
]:
    declare_key(_name, _type, _doc, _positive)

# Keys every mechanism accepts, with their defaults.
RUN_DEFAULTS: dict[str, Any] = {
    "batch": 1,
    "seq_len": 512,
    "d_model": 128,
    "gen_len": 8,
    "dtype": "float32",
    "device": "cpu",
}

# Keys every mechanism accepts without a default: absent from a config (and its record) unless given.
OPTIONAL_KEYS = ("compile",)
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # measure/compile.py

DTYPES = ("float32", "float16", "bfloat16")
DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}  # recorded by full name

# Largest size we accept for any integer key: beyond this no point fits a machine.
MAX_INT = 1 << 24

# How a point is measured (measure.harness.Options; the CLI's --max-time and --threads take the same ranges).
MAX_TIME_S = (0.01, 600.0)  # the timing loop's budget per point, seconds
MAX_THREADS = 1024  # torch threads; 0 keeps torch's current setting

# What a CLI string must look like to be read as a number: ASCII digits only, no '_' separators.
ASCII_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
ASCII_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _coerce(key: str, value: Any) -> Any:
    """Convert `value` (possibly a CLI string) to the key's declared type."""
    info = KEYS[key]
    if value is None:
        return None
    if info.type is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} is not an integer; {key} takes a whole number")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, numbers.Integral) and not isinstance(value, int):  # numpy's integers are integers
            value = int(value)
        if isinstance(value, str):
            if not ASCII_INTEGER.fullmatch(value.strip()):  # int() would also take '٦٤', '６４' and '6_4'
                raise ConfigError(f"{key}={value!r} is not an integer; {key} takes a whole number in ASCII digits, e.g. 64")
            value = int(value.strip())
        if not isinstance(value, int):
            raise ConfigError(f"{key}={value!r} is not an integer; {key} takes a whole number")
        if info.positive and value <= 0:
            raise ConfigError(f"{key}={value} must be a positive integer")
        if value < 0:
            raise ConfigError(f"{key}={value} must be >= 0")
        if value > MAX_INT:
            raise ConfigError(f"{key}={value} is too large; at most {MAX_INT}")
        return value
    if info.type is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} is not a number; {key} takes a number")
        if isinstance(value, str) and not ASCII_NUMBER.fullmatch(value.strip()):  # float() also takes '６４', '1_0'
            raise ConfigError(f"{key}={value!r} is not a number; {key} takes a number in ASCII digits, e.g. 1.25")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={value!r} is not a number; {key} takes a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{key}={value!r} is not a finite number")
        if info.positive and value <= 0:
            raise ConfigError(f"{key}={value} must be positive")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{key}={value!r} is not a string; {key} takes a name")
    return value.strip()


def check_device(device: str) -> None:
    import torch

    if device == "cpu":
        return
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} is not available here; accepted: cpu")
        if ":" in device and int(device[5:]) >= torch.cuda.device_count():
            raise ConfigError(f"device={device!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
        return
    raise ConfigError(f"device={device!r} is not a device; accepted: cpu, cuda, cuda:N")


def resolve_config(spec: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """Full validated config of `spec` (a MechanismSpec) with `overrides` applied."""
    accepted = {**RUN_DEFAULTS, **spec.defaults}
    config: dict[str, Any] = dict(accepted)
    for key, value in overrides.items():
        if key not in accepted and key not in OPTIONAL_KEYS:
            from effprof.suggest import accepted as near_miss

            hint = " (a config key of other mechanisms)" if key in KEYS else ""
            raise ConfigError(f"unknown config key {key!r} for {spec.name}{hint}" + near_miss(key, sorted(accepted), f"effprof explain {spec.name}"))
        config[key] = _coerce(key, value) if key in KEYS else value  # a module factory's own key: its spec types it
    for key, value in config.items():
        if key in KEYS:
            config[key] = _coerce(key, value)
    for key, choices in spec.choices.items():
        if config.get(key) not in choices:
            raise ConfigError(f"{key}={config.get(key)!r} is not accepted by {spec.name}; accepted: {', '.join(choices)}")
    config["dtype"] = DTYPE_ALIASES.get(config["dtype"], config["dtype"])
    if config["dtype"] not in DTYPES:
        aliases = ", ".join(f"{a} ({full})" for a, full in DTYPE_ALIASES.items())
        from effprof.suggest import did_you_mean

        raise ConfigError(f"dtype={config['dtype']!r} is not accepted{did_you_mean(config['dtype'], [*DTYPES, *DTYPE_ALIASES])}; "
                          f"accepted: {', '.join(DTYPES)}, or {aliases}")
    check_device(config["device"])
    if config.get("compile") is not None and config["compile"] not in COMPILE_MODES:
        raise ConfigError(f"compile={config['compile']!r} is not a torch.compile mode; accepted: {', '.join(COMPILE_MODES)}")
    _derive_heads(config)
    if spec.validate is not None:
        spec.validate(config)
    return config


def _derive_heads(config: dict[str, Any]) -> None:
    """Fill head_dim / n_kv_heads from n_heads, and check they divide."""
    if "n_heads" not in config:
        return
    n_heads, d_model = config["n_heads"], config["d_model"]
    if "head_dim" in config and config["head_dim"] is None:
        if d_model % n_heads:
            raise ConfigError(f"d_model={d_model} is not divisible by n_heads={n_heads}; pick n_heads dividing d_model or set head_dim")
        config["head_dim"] = d_model // n_heads
    if "n_kv_heads" in config:
        if config["n_kv_heads"] is None:
            config["n_kv_heads"] = n_heads
        if n_heads % config["n_kv_heads"]:
            raise ConfigError(f"n_kv_heads={config['n_kv_heads']} does not divide n_heads={n_heads}; accepted: a divisor of n_heads")
