"""Week 4: attention. Attention(Q, K, V) = softmax(QKᵀ/√d)V holds an n×n score matrix: O(N²d) FLOPs and, in the
naive form, O(N²) memory; the matrix P itself is the attention pattern."""

from effprof.course import read
from effprof.course.lab import Finding, Lab, Sweep
from effprof.course.probes import attention_matrix

SIZES = [128, 256, 512, 1024]


def flops(session, extras):
    row = read.fit(session, "softmax_attention", "flops", "forward", impl="naive")
    return Finding("FLOPs of QKᵀ and PV as N grows (naive form)", read.exponent_text(row),
                   "doubling N quadruples the work: every query meets every key")


def memory(session, extras):
    row = read.fit(session, "softmax_attention", "peak_bytes", "forward", impl="naive")
    return Finding("peak memory of the naive form", read.exponent_text(row), "the n×n score matrix S = QKᵀ/√d is held whole")


def matrix(session, extras):
    n = read.largest(session, "seq_len")
    peak = read.value(session, "softmax_attention", "forward", "peak_bytes", impl="naive", seq_len=n)
    rows = read.records(session, "softmax_attention", "forward", impl="naive", seq_len=n)
    scores = rows[0]["batch"] * rows[0]["n_heads"] * n * n * 4 if rows else None  # b·h·N² float32 entries
    return Finding(f"naive peak memory at N={n} against one b·h·N² score matrix ({read.show(scores, 'bytes')})",
                   f"{read.show(peak, 'bytes')} = {read.times(read.ratio(peak, scores))} the matrix",
                   "S and softmax(S) are each that size, the boolean causal mask a quarter of it")


def fused(session, extras):
    n = read.largest(session, "seq_len")
    naive = read.value(session, "softmax_attention", "forward", "peak_bytes", impl="naive", seq_len=n)
    sdpa = read.value(session, "softmax_attention", "forward", "peak_bytes", impl="sdpa", seq_len=n)
    return Finding(f"peak memory of the fused kernel (sdpa) against naive at N={n}",
                   f"{read.show(sdpa, 'bytes')} vs {read.show(naive, 'bytes')} ({read.times(read.ratio(sdpa, naive))})",
                   "the same function without the n×n matrix in memory (week 13)")


def pattern(session, extras):
    p = extras["attention"]
    return Finding("the attention pattern P drawn on the page (head 0): mass above the diagonal, rows summing to 1",
                   f"mass above diagonal {p['mass_above_diagonal']:.3g}, largest |row sum − 1| {p['row_sum_error']:.2g}",
                   "causal: no query sees a later key; each row is a distribution over the keys up to it")


LAB = Lab(
    week=4, title="Attention",
    concept="Attention(Q,K,V) = softmax(QKᵀ/√d)V: O(N²d) FLOPs and, held whole, an O(N²) attention matrix.",
    sweeps=(Sweep(("softmax_attention",), {"seq_len": SIZES, "impl": ["naive", "sdpa"]}),),
    looks=(flops, memory, matrix, fused, pattern),
    extras={"attention": attention_matrix},
)
