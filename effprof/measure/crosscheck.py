"""effprof's mechanisms beside the Hugging Face layers they correspond to, at equal configuration.

    python3 scripts/crosscheck-hf.py [--seq-len 256] [--d-model 128] [--ops]     # prints the README's table

For each pair, both modules are built at the same keys and run forward on the same
input under effprof's FlopCounter, with the per-module breakdown. A row gives:
output shapes, parameter counts, the FLOPs of the projections both have (Linear
submodules of the same name: they must be equal), the causal depthwise convolution
(Mamba's conv1d: transformers runs nn.Conv1d with padding k−1 over n+k−1 positions
and adds its bias, (2k+1)·C·(n+k−1) FLOPs; effprof computes the n causal outputs as k
multiply-adds starting from the bias, 2k·C·n), the total counted FLOPs, and the
aten ops whose counts differ, which is where every remaining difference comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# (effprof mechanism, its keys, Hugging Face target, its keys): the same layer at the same sizes
PAIRS: tuple[tuple[str, dict[str, Any], str, dict[str, Any]], ...] = (
    ("mamba", {"impl": "sequential"}, "hf:mamba.mixer", {}),
    ("mamba", {"impl": "chunked"}, "hf:mamba.mixer", {}),
    ("mamba2", {"impl": "chunked"}, "hf:mamba2.mixer", {}),
    ("softmax_attention", {"n_heads": 4, "n_kv_heads": 2, "impl": "sdpa"}, "hf:llama.attention", {"n_heads": 4, "n_kv_heads": 2}),
    ("sliding_window", {"n_heads": 4, "window": 64, "impl": "fused"}, "hf:mistral.attention", {"n_heads": 4, "window": 64}),
    ("moe_topk", {"n_experts": 8, "top_k": 2, "d_ff": 256}, "hf:mixtral.moe", {"n_experts": 8, "top_k": 2, "d_ff": 256}),
)
CONV_OPS = ("convolution", "addcmul")  # transformers' nn.Conv1d; effprof's k taps


@dataclass
class Side:
    """One module's figures in a cross-check."""

    name: str
    config: dict[str, Any]
    shape: tuple[int, ...]
    params: int
    flops: float
    by_op: dict[str, float]
    projections: dict[str, float]  # Linear submodule path -> FLOPs
    uncounted: list[str] = field(default_factory=list)


def measure_side(name: str, config: dict[str, Any], seq_len: int, d_model: int) -> Side:
    """Build `name` at `config` and the sizes, run forward once under the counter with the breakdown."""
    import torch

    from effprof.measure.breakdown import measure_breakdown
    from effprof.measure.flops import FlopCounter
    from effprof.registry import build

    module = build(name, seq_len=seq_len, d_model=d_model, **config).eval()
    x = torch.randn(1, seq_len, d_model, generator=torch.Generator().manual_seed(0))

    def run():
        with torch.no_grad():
            return module(x)

    with FlopCounter() as counter:
        y = run()
    tree = measure_breakdown(module, run, depth=1, repeats=1)
    projections = {path: row["flops"] for path, row in tree.items() if row["type"] == "Linear"}
    return Side(name, config, tuple(y.shape), sum(p.numel() for p in module.parameters()), counter.total,
                dict(counter.by_op), projections, sorted(counter.unknown_ops))


def crosscheck(seq_len: int = 256, d_model: int = 128) -> list[dict[str, Any]]:
    """One row per pair of PAIRS: shapes, params, shared projection and convolution FLOPs, totals, ops that differ."""
    rows = []
    for name, config, target, hf_config in PAIRS:
        ours, theirs = measure_side(name, config, seq_len, d_model), measure_side(target, hf_config, seq_len, d_model)
        shared = sorted(set(ours.projections) & set(theirs.projections))
        differing = {op: (ours.by_op.get(op, 0.0), theirs.by_op.get(op, 0.0))
                     for op in sorted(set(ours.by_op) | set(theirs.by_op)) if ours.by_op.get(op, 0.0) != theirs.by_op.get(op, 0.0)}
        rows.append({
            "effprof": name, "effprof_config": config, "hf": target, "hf_config": hf_config,
            "shape_effprof": ours.shape, "shape_hf": theirs.shape,
            "params_effprof": ours.params, "params_hf": theirs.params,
            "shared_projections": shared,
            "projection_flops_effprof": sum(ours.projections[p] for p in shared),
            "projection_flops_hf": sum(theirs.projections[p] for p in shared),
            "conv_flops_effprof": sum(ours.by_op.get(op, 0.0) for op in CONV_OPS),
            "conv_flops_hf": sum(theirs.by_op.get(op, 0.0) for op in CONV_OPS),
            "flops_effprof": ours.flops, "flops_hf": theirs.flops,
            "differing_ops": differing, "uncounted_hf": theirs.uncounted,
        })
    return rows


def _m(value: float) -> str:
    return f"{value / 1e6:.2f}M"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The README's side-by-side table."""
    header = ("| effprof | Hugging Face | shape | params (effprof / HF) | shared projections (effprof / HF) | conv (effprof / HF) "
              "| total counted (effprof / HF) | HF / effprof |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        config = ", ".join(f"{k}={v}" for k, v in r["effprof_config"].items())
        same = "same" if r["shape_effprof"] == r["shape_hf"] else f"{r['shape_effprof']} vs {r['shape_hf']}"
        conv = f"{_m(r['conv_flops_effprof'])} / {_m(r['conv_flops_hf'])}" if r["conv_flops_hf"] else "–"
        lines.append(f"| `{r['effprof']}` ({config}) | `{r['hf']}` | {same} | {r['params_effprof']:,} / {r['params_hf']:,} "
                     f"| {_m(r['projection_flops_effprof'])} / {_m(r['projection_flops_hf'])} ({', '.join(r['shared_projections'])}) "
                     f"| {conv} | {_m(r['flops_effprof'])} / {_m(r['flops_hf'])} | {r['flops_hf'] / r['flops_effprof']:.3f} |")
    return "\n".join(lines)
