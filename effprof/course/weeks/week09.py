"""Week 9: sparse attention. Each query attends a pattern P_i of keys — local windows, dilations, global tokens,
random blocks — so the work is O(N·|P_i|·d) instead of O(N²d); the patterns are drawn on the page."""

from effprof.course import read
from effprof.course.lab import Finding, Lab, Sweep

SIZES = [256, 512, 1024, 2048]
SPARSE = ("sliding_window", "longformer", "bigbird")


def _look(name: str, what: str):
    def look(session, extras):
        n = read.largest(session, "seq_len")
        row = read.fit(session, name, "flops", "forward")
        mine = read.value(session, name, "forward", "flops_counted", seq_len=n)
        full = read.value(session, "softmax_attention", "forward", "flops_counted", seq_len=n)
        density = next((p["density"] for p in session.patterns or [] if p["name"] == name), None)
        shown = f"{density:.3f}" if density is not None else read.NOT_MEASURED
        return Finding(f"{name} ({what}): FLOPs as N grows; at N={n} against full attention; pattern density at n=256",
                       f"{read.exponent_text(row)}; {read.times(read.ratio(mine, full))}; density {shown}", "")
    look.__name__ = f"look_{name}"
    return look


def full(session, extras):
    row = read.fit(session, "softmax_attention", "flops", "forward")
    return Finding("full causal attention, for reference", read.exponent_text(row), "the density of its pattern is 1")


def state(session, extras):
    n = read.largest(session, "seq_len")
    window = read.value(session, "sliding_window", "decode", "state_bytes", seq_len=n)
    full_kv = read.value(session, "softmax_attention", "decode", "state_bytes", seq_len=n)
    return Finding(f"decode state at N={n}: a sliding window's last w keys against the full KV cache",
                   f"{read.show(window, 'bytes')} vs {read.show(full_kv, 'bytes')}", "a window forgets: O(w·d) instead of O(N·d)")


LAB = Lab(
    week=9, title="Sparse attention",
    concept="o_i = Σ_{j∈P_i} softmax(q_iᵀk_j/√d) v_j over a pattern P_i: O(N·|P|·d) work; the pattern decides what is seen.",
    sweeps=(Sweep(("softmax_attention", *SPARSE), {"seq_len": SIZES}),
            Sweep(("softmax_attention", "sliding_window"), {"seq_len": [max(SIZES)]}, ("decode",))),
    looks=(full, _look("sliding_window", "local window"), _look("longformer", "window + global tokens"),
           _look("bigbird", "window + global + random blocks"), state),
    timing=False, patterns=True,
    project="sliding_window",
)
