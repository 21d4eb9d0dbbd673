"""Week 6: training and inference. Autoregressive decode keeps the KV cache: K and V of every past token, O(N·d) per
layer, and each new token attends all of them, so decode costs O(N·d) per token while prefill costs O(N²d)."""

from effprof.course import read
from effprof.course.lab import Finding, Lab, Sweep

SIZES = [256, 512, 1024, 2048]


def cache(session, extras):
    row = read.fit(session, "softmax_attention", "state_bytes", "decode", n_kv_heads=2)
    return Finding("KV cache size as the context N grows (one layer, MHA)", read.exponent_text(row), "one K and one V row per token")


def per_token(session, extras):
    n = read.largest(session, "seq_len")
    rows = read.records(session, "softmax_attention", "decode", n_kv_heads=2, seq_len=n)
    state = read.value(session, "softmax_attention", "decode", "state_bytes", n_kv_heads=2, seq_len=n)
    if not rows or state is None:
        return Finding("KV cache bytes per token", read.NOT_MEASURED)
    r = rows[0]
    formula = 2 * r["batch"] * r["n_kv_heads"] * r["head_dim"] * 4
    return Finding(f"KV cache bytes per cached token at N={n}",
                   f"{state / n:.0f} B (2 · b · g · d · 4 B = 2 · {r['batch']} · {r['n_kv_heads']} · {r['head_dim']} · 4 = {formula})",
                   "O(N·d) per layer: multiply by the layers and the batch for a model")


def decode_cost(session, extras):
    row = read.fit(session, "softmax_attention", "flops", "decode", n_kv_heads=2)
    return Finding("decode FLOPs per generated token as the context grows", read.exponent_text(row),
                   "each new query attends every cached key")


def prefill_cost(session, extras):
    row = read.fit(session, "softmax_attention", "flops", "forward", n_kv_heads=2)
    return Finding("prefill (the whole prompt at once) FLOPs", read.exponent_text(row), "N queries × N keys: one power of N more than a step")


def decode_time(session, extras):
    small, n = min(SIZES), read.largest(session, "seq_len")
    t_small = read.value(session, "softmax_attention", "decode", "time_s", n_kv_heads=2, seq_len=small)
    t_large = read.value(session, "softmax_attention", "decode", "time_s", n_kv_heads=2, seq_len=n)
    grew = read.ratio(t_large, t_small)
    if grew is None:
        meaning = ""
    elif grew < n / small:
        meaning = f"less than N's ×{n // small}: a fixed per-step cost (projections, dispatch) dominates at small N"
    else:
        meaning = f"more than N's ×{n // small}: beyond the FLOPs, the cache outgrows the CPU caches (or the machine was busy)"
    return Finding(f"time per generated token at N={small} and N={n}",
                   f"{read.show(t_small, 'time')} → {read.show(t_large, 'time')} ({read.times(grew)})", meaning)


def grouped(session, extras):
    n = read.largest(session, "seq_len")
    mha = read.value(session, "softmax_attention", "decode", "state_bytes", n_kv_heads=2, seq_len=n)
    mqa = read.value(session, "softmax_attention", "decode", "state_bytes", n_kv_heads=1, seq_len=n)
    return Finding(f"cache with one shared K/V head (MQA, g=1) against one per head (MHA, g=2) at N={n}",
                   f"{read.show(mqa, 'bytes')} vs {read.show(mha, 'bytes')} ({read.times(read.ratio(mqa, mha))})",
                   "GQA/MQA shrink the cache by h/g; the growth in N stays")


LAB = Lab(
    week=6, title="Training & inference: the KV cache",
    concept="Decode keeps K and V of every past token: the KV cache grows O(N·d) per layer and each step costs O(N·d).",
    sweeps=(Sweep(("softmax_attention",), {"seq_len": SIZES, "n_kv_heads": [2, 1]}, ("forward", "decode"), {"n_heads": 2}),),
    looks=(cache, per_token, decode_cost, prefill_cost, decode_time, grouped),
)
