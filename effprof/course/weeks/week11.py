"""Week 11: hybrid architectures. Interleaving attention with Mamba layers keeps only the attention layers' KV
caches: the state grows with N in proportion to the attention layers, the rest is constant."""

from effprof.course import read
from effprof.course.lab import Finding, Lab, Sweep

SIZES = [256, 512, 1024, 2048]
PATTERNS = ["AAAA", "MAMA", "MMMA", "MMMM"]


def growth(session, extras):
    parts = [f"{p}: {read.growth_text(session, 'hybrid', 'state_bytes', 'decode', pattern=p)}" for p in PATTERNS]
    return Finding("decode state as N grows, by layer pattern (A attention, M Mamba)", "; ".join(parts),
                   "any attention layer makes the state grow linearly; all-Mamba keeps it constant")


def sizes(session, extras):
    n = read.largest(session, "seq_len")
    values = {p: read.value(session, "hybrid", "decode", "state_bytes", pattern=p, seq_len=n) for p in PATTERNS}
    parts = [f"{p}: {read.show(v, 'bytes')}" for p, v in values.items()]
    return Finding(f"decode state at N={n}", ", ".join(parts),
                   f"1 attention layer in 4 keeps {read.times(read.ratio(values['MMMA'], values['AAAA']))} of all-attention's state")


def decode_cost(session, extras):
    n = read.largest(session, "seq_len")
    att = read.value(session, "hybrid", "decode", "flops_counted", pattern="AAAA", seq_len=n)
    hyb = read.value(session, "hybrid", "decode", "flops_counted", pattern="MMMA", seq_len=n)
    return Finding(f"FLOPs per generated token at N={n}: all-attention against MMMA", f"{read.show(att, 'flops')} vs {read.show(hyb, 'flops')}",
                   "each step reads every attention layer's cache")


def prefill(session, extras):
    parts = [f"{p}: {read.exponent_text(read.fit(session, 'hybrid', 'flops', 'forward', pattern=p))}" for p in ("AAAA", "MMMA", "MMMM")]
    return Finding("prefill FLOPs as N grows (log-log slope)", "; ".join(parts),
                   "each attention layer adds an N² term; the slope climbs toward 2 as it overtakes the N·d² projections")


LAB = Lab(
    week=11, title="Hybrid architectures",
    concept="Inter-layer hybrids (Jamba, Zamba): Mamba layers with a few attention layers; the KV cache shrinks by the attention fraction.",
    sweeps=(Sweep(("hybrid",), {"seq_len": SIZES, "pattern": PATTERNS}, ("forward", "decode")),),
    looks=(growth, sizes, decode_cost, prefill),
    timing=False,
    project="hybrid",
)
