"""A lab's measurements that are not records: forms agreeing, ZOH against bilinear, an attention matrix.

Each builds the registered reference (effprof.registry.build, seed 0) and returns plain data that the
looks read and the page draws: {"title", "columns", "rows"} for a table, {"title", "heatmap"} for a matrix.
"""

from __future__ import annotations

from typing import Any

import torch

from effprof.registry import build, get_spec

PROBE_BATCH = 2
PROBE_D_MODEL = 32


def _input(seq_len: int, d_model: int = PROBE_D_MODEL) -> torch.Tensor:
    return torch.randn(PROBE_BATCH, seq_len, d_model, generator=torch.Generator().manual_seed(1))  # x: (b, n, d)


def forms_agree(name: str, seq_len: int = 64, **config: Any) -> dict[str, Any]:
    """Every impl of `name` on the same weights and input: the largest difference from the first form's output,
    and (causal mechanisms) prefill + steps against forward for each form."""
    from effprof.contract import prefill_problem

    impls = get_spec(name).impls
    x = _input(seq_len, config.get("d_model", PROBE_D_MODEL))
    sized = {"batch": PROBE_BATCH, "seq_len": seq_len, "d_model": x.shape[-1], **config}
    reference = build(name, **{**sized, "impl": impls[0]}).eval()
    with torch.no_grad():
        expected = reference(x)
    rows = []
    for impl in impls:
        module = build(name, **{**sized, "impl": impl}).eval()
        module.load_state_dict(reference.state_dict())
        with torch.no_grad():
            got = module(x)
        decode = prefill_problem(module, x) if get_spec(name).causal else ""
        rows.append([impl, float((got - expected).abs().max()), float(expected.abs().max()), decode or "equal to forward"])
    return {"title": f"{name}: its forms on the same weights (seq_len={seq_len})",
            "columns": ["form", f"largest |difference| from {impls[0]}", "largest |output|", "prefill + steps"], "rows": rows}


def discretisations(seq_len: int = 256) -> dict[str, Any]:
    """S4D with ZOH and with the bilinear transform on the same weights: Ā per channel, and the outputs."""
    x = _input(seq_len)
    modules = {}
    for rule in ("zoh", "bilinear"):
        modules[rule] = build("s4", batch=PROBE_BATCH, seq_len=seq_len, d_model=x.shape[-1], discretization=rule).eval()
    modules["bilinear"].load_state_dict(modules["zoh"].state_dict())
    with torch.no_grad():
        ssm = {rule: m.ssm() for rule, m in modules.items()}
        y = {rule: m(x) for rule, m in modules.items()}
        dt = torch.exp(modules["zoh"].log_dt.float())  # Δ per channel: (H,)
        a_gap = (ssm["zoh"].Abar - ssm["bilinear"].Abar).abs()  # |Ā_zoh − Ā_bilinear|: (H, M)
        lam = (ssm["zoh"].log_Abar / dt[:, None]).abs()  # |Λ|: (H, M)
        scaled = a_gap / (dt[:, None] * lam).pow(3)  # the gap per (Δ|Λ|)³: both rules agree to second order
    rows = []
    for h in sorted(range(len(dt)), key=lambda i: float(dt[i]))[:: max(1, len(dt) // 4)]:
        rows.append([h, float(dt[h]), float(a_gap[h].max()), float(scaled[h].median())])
    return {"title": f"S4D: zero-order hold against bilinear on the same weights (d_model={x.shape[-1]}, seq_len={seq_len})",
            "columns": ["channel", "Δ", "max |Ā_zoh − Ā_bilinear|", "median gap / (Δ|Λ|)³"], "rows": rows,
            "output_gap": float((y["zoh"] - y["bilinear"]).abs().max()), "output_scale": float(y["zoh"].abs().max()),
            "gap_per_cube": float(scaled.median()), "largest_gap": float(a_gap.max()),
            "largest_at": float((dt[:, None] * lam).flatten()[a_gap.flatten().argmax()])}


def attention_matrix(seq_len: int = 48) -> dict[str, Any]:
    """P = softmax(QKᵀ/√d) of head 0 of softmax_attention on a random input, computed by its naive form
    (naive_attention with V = I returns P itself), with the checks a student can read off it."""
    from effprof.mechanisms.attention import naive_attention

    x = _input(seq_len)[:1]
    module = build("softmax_attention", batch=1, seq_len=seq_len, d_model=x.shape[-1], impl="naive").eval()
    with torch.no_grad():
        q, k, _ = module._qkv(x)  # (1, h, n, d), (1, g, n, d)
        identity = torch.eye(seq_len).expand(1, k.shape[1], seq_len, seq_len)  # V = I: P V = P
        p = naive_attention(q, k, identity, causal=True)[0, 0]  # P: (n, n)
    above = float(p.triu(1).abs().sum())
    row_error = float((p.sum(-1) - 1).abs().max())
    return {"title": f"softmax_attention: P = softmax(QKᵀ/√d), head 0, n={seq_len} (rows: queries, columns: keys)",
            "heatmap": p.tolist(), "mass_above_diagonal": above, "row_sum_error": row_error,
            "entries": seq_len * seq_len, "last_row_max": float(p[-1].max())}
