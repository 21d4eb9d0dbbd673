"""Week 8: state space models. x'(t) = Ax(t) + Bu(t) discretised by zero-order hold (Ā = exp(ΔA)) or the
bilinear transform (Ā = (I − Δ/2·A)⁻¹(I + Δ/2·A)); the discrete system runs as a recurrence, a convolution or a
chunked scan — the same function — in O(N) work with a constant state."""

from effprof.course import read
from effprof.course.lab import Finding, Lab, Sweep
from effprof.course.probes import discretisations, forms_agree

SIZES = [128, 256, 512, 1024]


def rules(session, extras):
    d = extras["discretisation"]
    return Finding("ZOH against bilinear on the same weights: |Ā_zoh − Ā_bilinear| / (Δ|Λ|)³, median over modes (theory 1/12 ≈ 0.083)",
                   f"{d['gap_per_cube']:.3g}; largest gap {d['largest_gap']:.2g} at Δ|Λ| = {d['largest_at']:.2g}",
                   "exp(x) and (1 + x/2)/(1 − x/2) agree to second order: the rules part only where Δ|Λ| is not small")


def outputs(session, extras):
    d = extras["discretisation"]
    return Finding("the layer's outputs under the two rules", f"largest difference {d['output_gap']:.2g} (outputs up to {d['output_scale']:.2g})",
                   "HiPPO's fast modes (large |Λ|) are where the two rules give different systems")


def same_cost(session, extras):
    n = read.largest(session, "seq_len")
    zoh = read.value(session, "s4", "forward", "flops_counted", discretization="zoh", seq_len=n)
    bil = read.value(session, "s4", "forward", "flops_counted", discretization="bilinear", seq_len=n)
    return Finding(f"FLOPs of S4D with ZOH against bilinear at N={n}", f"{read.show(zoh, 'flops')} vs {read.show(bil, 'flops')}",
                   "discretising is O(N_s·d) once, independent of N")


def convolution(session, extras):
    row = read.fit(session, "s4", "flops", "forward", discretization="bilinear")
    return Finding("S4D's FFT convolution y = u * K as N grows", read.exponent_text(row), "N log N: the log is divided out by the claim")


def selective(session, extras):
    row = read.fit(session, "mamba", "flops", "forward")
    state = read.fit(session, "mamba", "state_bytes", "decode")
    return Finding("Mamba's selective scan: FLOPs and decode state as N grows", f"FLOPs {read.exponent_text(row)}; state {read.exponent_text(state)}",
                   "data-dependent Δ, B, C rule out the convolution: a scan, still linear, state constant")


def forms(session, extras):
    parts = []
    for table in extras["forms"]:
        worst = max(row[1] for row in table["rows"])
        parts.append(f"{table['title'].split(':')[0]} ({', '.join(row[0] for row in table['rows'])}) {worst:.2g}")
    return Finding("the scan's forms on the same weights: largest difference", "; ".join(parts),
                   "recurrent, convolutional/quadratic and chunked forms compute one function (tables on the page)")


LAB = Lab(
    week=8, title="State space models",
    concept="x'(t) = Ax(t) + Bu(t); ZOH: Ā = exp(ΔA), B̄ = (ΔA)⁻¹(exp(ΔA) − I)·ΔB; run as a recurrence, a convolution or a scan.",
    sweeps=(Sweep(("s4",), {"seq_len": SIZES, "discretization": ["zoh", "bilinear"]}),
            Sweep(("mamba",), {"seq_len": SIZES}, ("forward", "decode"), {"d_model": 64, "d_state": 8})),
    looks=(rules, outputs, same_cost, convolution, selective, forms),
    timing=False,
    extras={"discretisation": discretisations,
            "forms": lambda: [forms_agree("mamba2", seq_len=48, chunk_size=16), forms_agree("mamba", seq_len=48, chunk_size=16),
                              forms_agree("s4", seq_len=48)]},
    project="mamba",
)
