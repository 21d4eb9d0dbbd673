"""Week 5: the transformer block. A block is attention plus a position-wise FFN: the FFN costs O(N·d·d_ff), attention
O(N²d), so at long sequences attention is the bottleneck; the crossover is where N passes a few d_ff."""

from effprof.course import read
from effprof.course.lab import Finding, Lab, Sweep

SIZES = [128, 256, 512, 1024, 2048]


def crossover(session, extras):
    row = read.crossover(session, "softmax_attention", "dense_ffn", "flops", "forward")
    return Finding("where attention's FLOPs overtake the FFN's (same d_model)", read.crossover_text(row),
                   "the transformer's long-sequence bottleneck begins here")


def exponents(session, extras):
    att = read.fit(session, "softmax_attention", "flops", "forward")
    ffn = read.fit(session, "dense_ffn", "flops", "forward")
    return Finding("FLOPs exponents: attention against the FFN", f"attention {read.exponent_text(att)}; FFN {read.exponent_text(ffn)}",
                   "the FFN treats each position alone: linear in N")


def share(session, extras):
    small, n = min(SIZES), read.largest(session, "seq_len")
    parts = []
    for size in (small, n):
        att = read.value(session, "softmax_attention", "forward", "flops_counted", seq_len=size)
        ffn = read.value(session, "dense_ffn", "forward", "flops_counted", seq_len=size)
        share = read.ratio(att, (att or 0) + (ffn or 0)) if att is not None and ffn is not None else None
        parts.append(f"N={size}: {share:.0%}" if share is not None else f"N={size}: {read.NOT_MEASURED}")
    return Finding("attention's share of a block's FLOPs (attention + FFN)", ", ".join(parts), "")


def params(session, extras):
    att = read.value(session, "softmax_attention", "forward", "params")
    ffn = read.value(session, "dense_ffn", "forward", "params")
    return Finding("parameters: attention (Wq, Wk, Wv, Wo) against the FFN", f"{read.show(att, 'count')} vs {read.show(ffn, 'count')}",
                   "the FFN holds most weights; attention most of the long-sequence work")


def decode(session, extras):
    n = read.largest(session, "seq_len")
    att = read.value(session, "softmax_attention", "decode", "flops_counted", seq_len=n)
    ffn = read.value(session, "dense_ffn", "decode", "flops_counted", seq_len=n)
    return Finding(f"per generated token at context N={n}: attention against FFN FLOPs",
                   f"{read.show(att, 'flops')} vs {read.show(ffn, 'flops')}", "a step reads the whole KV cache; the FFN sees one token")


LAB = Lab(
    week=5, title="Transformer architecture",
    concept="A block = attention O(N²d) + position-wise FFN O(N·d·d_ff): for long sequences attention dominates.",
    sweeps=(Sweep(("softmax_attention", "dense_ffn"), {"seq_len": SIZES}, ("forward", "decode"), {"dense_ffn.top_k": 1, "dense_ffn.d_ff": 512}),),
    looks=(crossover, exponents, share, params, decode),
    timing=False,
)
