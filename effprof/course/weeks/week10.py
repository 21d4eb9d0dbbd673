"""Week 10: mixture of experts. P = softmax(XW_g + b_g); each token runs its top-k experts, so compute follows k,
not the number of experts; a capacity C = ⌈c·T·k/e⌉ per expert drops the overflow when the load is unbalanced."""

from effprof.course import read
from effprof.course.lab import Finding, Lab, Sweep

FACTORS = [0.5, 1.0, 1.25, 2.0]


def balance(session, extras):
    token = read.value(session, "moe_topk", "forward", "load_cv", capacity_factor=0)
    expert = read.value(session, "moe_expert_choice", "forward", "load_cv", capacity_factor=2)
    shown = [f"{v:.3f}" if v is not None else read.NOT_MEASURED for v in (token, expert)]
    return Finding("load imbalance (coefficient of variation of tokens per expert): token choice against expert choice",
                   f"{shown[0]} vs {shown[1]}", "expert choice is balanced by construction: each expert takes its top tokens")


def drops(session, extras):
    parts = []
    for factor in FACTORS:
        dropped = read.value(session, "moe_topk", "forward", "dropped_fraction", capacity_factor=factor)
        parts.append(f"c={factor:g}: {dropped:.1%}" if dropped is not None else f"c={factor:g}: {read.NOT_MEASURED}")
    return Finding("assignments dropped by the capacity limit, by capacity factor c", ", ".join(parts),
                   "below c = 1 some tokens must overflow; above it only imbalance drops them")


def flops_by_capacity(session, extras):
    free = read.value(session, "moe_topk", "forward", "flops_counted", capacity_factor=0)
    tight = read.value(session, "moe_topk", "forward", "flops_counted", capacity_factor=min(FACTORS))
    return Finding(f"FLOPs with no capacity limit against c={min(FACTORS):g}", f"{read.show(free, 'flops')} vs {read.show(tight, 'flops')}",
                   "a dropped assignment is an expert FFN not run")


def top_k(session, extras):
    one = read.value(session, "switch", "forward", "flops_counted", capacity_factor=0)
    two = read.value(session, "moe_topk", "forward", "flops_counted", capacity_factor=0)
    return Finding("FLOPs of top-1 (Switch) against top-2 routing, same 8 experts", f"{read.show(one, 'flops')} vs {read.show(two, 'flops')} "
                   f"({read.times(read.ratio(two, one))})", "compute follows the active experts k")


def aux(session, extras):
    loss = read.value(session, "moe_topk", "forward", "aux_loss", capacity_factor=0)
    return Finding("load-balancing loss L_aux = e · Σ_i D_i · G_i (1 when perfectly balanced)",
                   f"{loss:.3f}" if loss is not None else read.NOT_MEASURED, "training pushes it toward 1")


LAB = Lab(
    week=10, title="Mixture of experts",
    concept="P = softmax(XW_g + b_g), Y = Σ_k Top-k(P)·E_k(X): FLOPs ∝ k, parameters ∝ e; capacity drops the overflow.",
    sweeps=(Sweep(("moe_topk",), {"capacity_factor": [0, *FACTORS]}, config={"seq_len": 512}),
            Sweep(("switch",), {"capacity_factor": [0]}, config={"seq_len": 512}),
            Sweep(("moe_expert_choice",), {"capacity_factor": [2]}, config={"seq_len": 512})),
    looks=(balance, drops, flops_by_capacity, top_k, aux),
    timing=False,
    project="moe_topk",
)
