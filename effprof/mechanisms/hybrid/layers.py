"""The layers a hybrid stack is built from: registered mechanisms, named by letter or by name.

    A  softmax_attention (impl sdpa)      W  sliding_window        L  linear_attention
    M  mamba (impl auto)                  S  mamba2                E  moe_topk (MoE FFN)
    F  dense_ffn

Every other layer runs its mechanism's own default form. Mamba layers run impl auto, as mamba does alone,
whether named by letter or by name: the fastest faithful form at the point (the compiled scan chunked_c on
CPU in float32 where it is built, forward, prefill and train alike; the torch form chunked elsewhere),
resolved per point by mamba's own rule; `effprof explain` says which form each layer of a stack runs
(`forms_note`), and the hybrid specs declare mamba's kernel.

A pattern is a string of letters ("MMMA", "AFME") or comma-separated names of causal
registered mechanisms ("mamba,mamba,softmax_attention"; letters may be mixed in). Each
entry is one pre-norm residual block; `parse_pattern` repeats the pattern and cuts it to
n_layers blocks (n_layers unset: one block per entry).

A sub-layer's config is the stack's config restricted to the keys that sub-layer accepts
(d_model, n_heads, d_state, window, d_ff, ...: one value shared by every layer that uses
the key), plus the letter's fixed impl, resolved by the sub-layer's own spec: each layer is
built and costed exactly as the registered mechanism.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from effprof.config import RUN_DEFAULTS, ConfigError, resolve_config
from effprof.registry import AUTO, auto_picks, get_spec, list_mechanisms

# letter -> (mechanism name, fixed config of that layer)
LETTERS: dict[str, tuple[str, dict[str, Any]]] = {
    "A": ("softmax_attention", {"impl": "sdpa"}),
    "W": ("sliding_window", {}),
    "M": ("mamba", {"impl": AUTO}),
    "S": ("mamba2", {}),
    "L": ("linear_attention", {}),
    "E": ("moe_topk", {}),
    "F": ("dense_ffn", {}),
}

# keys of the stack itself, never passed to a sub-layer (sparse_transformer's own `pattern` is another thing)
STACK_KEYS = frozenset({"pattern", "n_layers", "impl", "head_dim", "n_meta", "shared_every"})


@dataclass(frozen=True)
class Layer:
    """One registered mechanism inside a stack: its name and its fully resolved config."""

    name: str
    config: dict[str, Any] = field(hash=False)

    @property
    def kind(self) -> str:
        return layer_kind(self.name)

    def build(self):
        return get_spec(self.name).builder(self.config)


def accepted_letters() -> str:
    return ", ".join(f"{letter} ({name})" for letter, (name, _) in LETTERS.items())


def stackable(name: str) -> bool:
    """Causal token-to-token layers: not the generative samplers, not stacks themselves."""
    spec = get_spec(name)
    return spec.causal and not spec.generates and spec.family != "hybrid"


def parse_pattern(pattern: str, n_layers: int | None) -> list[tuple[str, dict[str, Any]]]:
    """(mechanism name, fixed config) per block: the pattern repeated and cut to n_layers entries."""
    text = pattern.strip()
    if "," in text:
        entries = [_entry(token.strip(), pattern) for token in text.split(",")]
    elif text in list_mechanisms():
        entries = [_entry(text, pattern)]
    else:
        entries = []
        for position, letter in enumerate(text):
            if letter not in LETTERS:
                raise ConfigError(
                    f"pattern={pattern!r}: bad letter {letter!r} at position {position}; accepted letters: "
                    f"{accepted_letters()}, or comma-separated mechanism names"
                )
            entries.append(LETTERS[letter])
    if not entries:
        raise ConfigError(f"pattern={pattern!r} is empty; accepted letters: {accepted_letters()}")
    count = len(entries) if n_layers is None else n_layers
    return [entries[i % len(entries)] for i in range(count)]


def _entry(token: str, pattern: str) -> tuple[str, dict[str, Any]]:
    if token in LETTERS:
        return LETTERS[token]
    names = [n for n in list_mechanisms() if stackable(n)]
    if token not in names:
        raise ConfigError(
            f"pattern={pattern!r}: unknown layer {token!r}; accepted: letters {accepted_letters()}, "
            f"or causal mechanisms {', '.join(names)}"
        )
    return next((entry for entry in LETTERS.values() if entry[0] == token), (token, {}))  # a letter's fixed impl


def layer(stack_config: dict[str, Any], name: str, fixed: dict[str, Any] | None = None) -> Layer:
    """The sub-layer `name` with the stack's values of the keys it accepts, `fixed` on top."""
    spec = get_spec(name)
    accepted = {**RUN_DEFAULTS, **spec.defaults}
    overrides = {k: stack_config[k] for k in accepted if k in stack_config and k not in STACK_KEYS}
    overrides.update(fixed or {})
    return Layer(name, resolve_config(spec, overrides))


def forms_note(layers: Iterable[Layer], modes: Iterable[str]) -> str:
    """One line for `effprof explain`: the form each distinct layer of a stack runs at its point, per mode where the
    choice depends on it, and why (impl=auto: the layer's own resolve_impl, the rule its records report)."""
    notes: dict[str, str] = {}
    for item in layers:
        spec = get_spec(item.name)
        impl = item.config.get("impl")
        if impl is None:
            text = "one form"
        elif impl != AUTO:
            text = f"impl={impl}"
        else:
            text = f"impl={AUTO}: " + auto_picks(spec, item.config, modes)
        notes.setdefault(f"{item.name}: {text}", "")
    return ("the form each layer runs, impl=auto resolved per point as the mechanism alone resolves it; here: "
            + " | ".join(notes))


def layer_kind(name: str) -> str:
    """What a sub-layer counts as in the per-kind breakdowns: attention, ssm, linear_attention, moe, ffn, ..."""
    spec = get_spec(name)
    if spec.family in ("attention", "sparse"):
        return "attention"
    if name == "dense_ffn":
        return "ffn"
    return spec.family


def state_kind(name: str, key: str | None) -> str:
    """Kind of one entry `key` of a sub-layer's decode state: attention_kv, ssm, conv, ..."""
    kind = layer_kind(name)
    if kind == "attention":
        return "attention_kv"  # keys, values (and a sparse pattern's bookkeeping)
    if kind == "ssm":
        return "conv" if key == "conv" else "ssm"
    return kind
