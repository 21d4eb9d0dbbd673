"""Analytic cost of a stack: the sum of its layers' own cost models plus the glue between them.

    FLOPs(stack) = Σ_layers spec.cost(layer config, mode).flops  +  Σ_blocks glue
    glue, per block on T tokens of width d (forward; backward):
        RMSNorm          x², mean, + ε, rsqrt, ·r, ·w        4·T·d + 2·T;   11·T·d + 3·T
        residual add     h + f(·)                             T·d;           T·d (h's two gradients summed)
        Hymba fusion     two output RMSNorms, a + s, ·½       + 2·T·d;       + 2·T·d (·½; u feeds two branches)
        Zamba shared     [h ; x₀] (free), the shared blocks at width 2d, · W_ℓ (2·T·2d·d), + h;
                         backward: + T·d more into x₀ per application, and the tied weights'
                         gradients summed: (applications − 1)·(shared parameters)
    state bytes = Σ_layers spec.cost(...).state_bytes (the layers' own states side by side).

T = b·n tokens (b·(n_meta + n) in Hymba) in forward and train, b per generated token in decode
(the layers' decode costs are already per generated token, averaged over the gen_len steps).

`layer_costs(plan, mode)` lists every sub-layer and every block's glue with its kind, FLOPs and
state bytes; `stack_cost` sums them and reports the sums by kind in Cost.extra as
flops_<kind> (attention, ssm, moe, ffn, linear_attention, stack = the glue) and
state_bytes_<kind> (attention_kv, ssm, conv, linear_attention), the same kinds
Stack.state_breakdown measures.
"""

from __future__ import annotations

from typing import Any

from effprof.cost_model import Tally, dtype_bytes
from effprof.mechanisms.hybrid import plan as layout
from effprof.mechanisms.hybrid.layers import Layer, state_kind
from effprof.registry import Cost, get_spec


def rms_norm_cost(t: Tally, tokens: float, d: int) -> None:
    """x·rsqrt(mean(x²) + ε)·w over `tokens` rows of d; the input and w need gradients."""
    # forward: x² (T·d), mean (T·d), + ε (T), rsqrt (T), ·r (T·d), ·w (T·d)
    # backward: dw = Σ_T g·x̂ (2·T·d), dx̂ = g·w (T·d), dr = Σ_d dx̂·x (2·T·d), rsqrt' (3·T),
    #           mean' (T·d), (x²)' (3·T·d), dx from x̂ (T·d), the two gradients of x summed (T·d)
    t.add(4 * tokens * d + 2 * tokens, 11 * tokens * d + 3 * tokens)


def residual_cost(t: Tally, tokens: float, d: int) -> None:
    """h + f(·): one add; backward sums h's gradient from the skip and from the branch."""
    t.add(tokens * d, tokens * d)


def conv_state_bytes(layer: Layer) -> float:
    """The conv window of a Mamba / Mamba-2 block: K − 1 past inputs per conv channel (ssm/conv.py)."""
    config = layer.config
    d_inner = config["expand"] * config["d_model"] if "expand" in config else 0
    channels = {"mamba": d_inner, "mamba2": d_inner + 2 * config.get("d_state", 0)}.get(layer.name, 0)
    return config["batch"] * channels * (config.get("d_conv", 1) - 1) * dtype_bytes(config)


def _state_split(layer: Layer, state_bytes: float) -> dict[str, float]:
    if not state_bytes:
        return {}
    conv = conv_state_bytes(layer) if state_kind(layer.name, "conv") == "conv" else 0.0
    split = {state_kind(layer.name, None): state_bytes - conv}
    if conv:
        split["conv"] = conv
    return split


def shared_parameters(shared: layout.SharedBlocks) -> float:
    """Parameters of Zamba's shared block (attention, FFN, norms), closed form for the layers it holds."""
    total = 0.0
    for block in shared.blocks:
        config = block.layer.config
        d = config["d_model"]
        total += d  # the block's RMSNorm weight
        if block.layer.name == "softmax_attention":
            inner, kv = config["n_heads"] * config["head_dim"], config["n_kv_heads"] * config["head_dim"]
            total += 2 * d * inner + 2 * d * kv  # W^Q, W^O; W^K, W^V
        elif block.layer.name == "dense_ffn":
            width = config["top_k"] * config["d_ff"]
            total += d * width * (3 if config["activation"] == "swiglu" else 2)  # W_gate, W_up, W_out
        else:
            raise ValueError(f"no parameter count for a shared {block.layer.name}")
    return total


def _layer_entry(index: int, layer: Layer, mode: str) -> dict[str, Any]:
    cost = get_spec(layer.name).cost(layer.config, mode)
    return {"layer": index, "name": layer.name, "kind": layer.kind, "flops": float(cost.flops),
            "state_bytes": float(cost.state_bytes), "state": _state_split(layer, cost.state_bytes)}


def _glue_entry(index: int, name: str, t: Tally, mode: str) -> dict[str, Any]:
    return {"layer": index, "name": name, "kind": "stack", "flops": t.total(mode), "state_bytes": 0.0, "state": {}}


def _block_entries(index: int, block: layout.Block, d: int, tokens: float, mode: str) -> list[dict[str, Any]]:
    t = Tally()
    if isinstance(block, layout.Residual):
        rms_norm_cost(t, tokens, d)
        residual_cost(t, tokens, d)
        return [_layer_entry(index, block.layer, mode), _glue_entry(index, "rms_norm+residual", t, mode)]
    if isinstance(block, layout.Parallel):
        for _ in range(3):  # input norm; output norms β₁, β₂
            rms_norm_cost(t, tokens, d)
        t.add(2 * tokens * d, tokens * d)  # (a + s)·½; backward: ·½ (the add passes the gradient on)
        t.add(0, tokens * d)  # u feeds both branches: their gradients summed
        residual_cost(t, tokens, d)
        entries = [_layer_entry(index, block.attention, mode), _layer_entry(index, block.ssm, mode)]
        return entries + [_glue_entry(index, "rms_norm+fusion+residual", t, mode)]
    inner = block.shared.d_model
    entries = []
    for inner_block in block.shared.blocks:
        entries += _block_entries(index, inner_block, inner, tokens, mode)
    t.linear(tokens, inner, d)  # · W_ℓ
    residual_cost(t, tokens, d)
    t.add(0, tokens * d)  # x₀ read once more: one more gradient summed into it
    return entries + [_glue_entry(index, "concat+projection+residual", t, mode)]


def layer_costs(plan: layout.StackPlan, mode: str) -> list[dict[str, Any]]:
    """One entry per sub-layer and per block's glue: layer (block index), name, kind, flops, state_bytes,
    state (bytes by state kind). FLOPs per generated token in decode."""
    b, d = plan.config["batch"], plan.config["d_model"]
    tokens = b if mode == "decode" else b * plan.tokens
    entries = [e for i, block in enumerate(plan.blocks) for e in _block_entries(i, block, d, tokens, mode)]
    applications: dict[int, list[layout.Shared]] = {}
    for block in plan.blocks:
        if isinstance(block, layout.Shared):
            applications.setdefault(id(block.shared), []).append(block)
    for uses in applications.values():
        if mode == "train" and len(uses) > 1:
            t = Tally()
            t.add(0, (len(uses) - 1) * shared_parameters(uses[0].shared))  # each application's weight gradients summed
            entries.append(_glue_entry(len(plan.blocks), "shared weight gradients", t, mode))
    if plan.n_meta and mode == "train" and b > 1:
        t = Tally()
        t.add(0, b * plan.n_meta * d)  # the meta tokens' gradient summed over the batch they were expanded to
        entries.append(_glue_entry(len(plan.blocks), "meta tokens", t, mode))
    return entries


def stack_cost(plan: layout.StackPlan, mode: str) -> Cost:
    entries = layer_costs(plan, mode)
    extra: dict[str, float] = {}
    for entry in entries:
        extra[f"flops_{entry['kind']}"] = extra.get(f"flops_{entry['kind']}", 0.0) + entry["flops"]
        for kind, nbytes in entry["state"].items():
            extra[f"state_bytes_{kind}"] = extra.get(f"state_bytes_{kind}", 0.0) + float(nbytes)
    return Cost(sum(e["flops"] for e in entries), sum(e["state_bytes"] for e in entries), extra)
