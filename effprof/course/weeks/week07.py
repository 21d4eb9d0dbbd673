"""Week 7: linear attention. Replacing exp(qᵀk) by φ(q)φ(k)ᵀ lets the sums be carried as a state
S_t = S_{t−1} + φ(k_t)ᵀv_t, z_t = z_{t−1} + φ(k_t)ᵀ: O(N·D·d) work instead of O(N²d), and a constant-size state."""

from effprof.course import read
from effprof.course.lab import Finding, Lab, Sweep
from effprof.course.probes import forms_agree

SIZES = [64, 128, 256, 512, 1024]
NAMES = ("softmax_attention", "linear_attention")


def flops_crossover(session, extras):
    row = read.crossover(session, "softmax_attention", "linear_attention", "flops", "forward")
    return Finding("where linear attention's FLOPs fall below softmax's", read.crossover_text(row),
                   "below it the fixed D·d state update costs more than attending a few keys")


def time_crossover(session, extras):
    row = read.crossover(session, "softmax_attention", "linear_attention", "time", "forward")
    return Finding("where it becomes faster on this machine", read.crossover_text(row), "time, unlike FLOPs, also pays for memory traffic and kernel quality")


def exponents(session, extras):
    soft = read.fit(session, "softmax_attention", "flops", "forward")
    lin = read.fit(session, "linear_attention", "flops", "forward")
    return Finding("FLOPs exponents: softmax against linear", f"{read.exponent_text(soft)}; {read.exponent_text(lin)}",
                   "O(N²d) → O(N·D·d)")


def state(session, extras):
    small, n = min(SIZES), read.largest(session, "seq_len")
    row = read.fit(session, "linear_attention", "state_bytes", "decode")
    a = read.value(session, "linear_attention", "decode", "state_bytes", seq_len=small)
    b = read.value(session, "linear_attention", "decode", "state_bytes", seq_len=n)
    return Finding(f"the recurrent form's state (S and z) at N={small} and N={n}",
                   f"{read.show(a, 'bytes')} and {read.show(b, 'bytes')}: {read.exponent_text(row)}",
                   "constant: h·D·(d + 1) numbers whatever the context")


def cache(session, extras):
    n = read.largest(session, "seq_len")
    kv = read.value(session, "softmax_attention", "decode", "state_bytes", seq_len=n)
    lin = read.value(session, "linear_attention", "decode", "state_bytes", seq_len=n)
    return Finding(f"softmax's KV cache against linear attention's state at N={n}",
                   f"{read.show(kv, 'bytes')} vs {read.show(lin, 'bytes')} ({read.times(read.ratio(kv, lin))})", "O(N·d) against O(D·d)")


def forms(session, extras):
    table = extras["forms"]
    worst = max(row[1] for row in table["rows"])
    steps = sum(row[3] == "equal to forward" for row in table["rows"])
    return Finding("parallel, recurrent and chunked forms on the same weights",
                   f"largest difference {worst:.2g}; prefill + steps = forward in {steps} of {len(table['rows'])} forms",
                   "three ways to compute one function (the table on the page)")


LAB = Lab(
    week=7, title="Linear attention",
    concept="o_t = φ(q_t)S_t / φ(q_t)z_t with S_t = S_{t−1} + φ(k_t)ᵀv_t: O(N²d) → O(N·D·d) work, O(N²) → O(D·d) memory.",
    sweeps=(Sweep(NAMES, {"seq_len": SIZES}, ("forward", "decode")),),
    looks=(flops_crossover, time_crossover, exponents, state, cache, forms),
    max_time_s=0.1,
    extras={"forms": lambda: forms_agree("linear_attention", seq_len=64, chunk_size=16)},
    project="linear_attention",
)
