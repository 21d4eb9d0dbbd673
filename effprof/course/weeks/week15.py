"""Week 15: comparative analysis. The survey's complexity comparison table — prefill, decode per token, state — with
the measured exponents and their verdicts beside the theoretical costs (the page holds the full table)."""

from effprof.course import read
from effprof.course.lab import Finding, Lab, Sweep

SIZES = [256, 512, 1024, 2048]
NAMES = ("softmax_attention", "linear_attention", "mamba", "sliding_window", "moe_topk", "hybrid")


def _exp(value, verdict) -> str:
    return f"N^{value:.2f} {verdict}".rstrip() if isinstance(value, (int, float)) else "–"


def _row(name: str):
    def look(session, extras):
        row = next((r for r in session.complexity if r["mechanism"] == name), None)
        if row is None:
            return Finding(name, read.NOT_MEASURED)
        measured = (f"prefill {_exp(row['prefill_exponent'], row['prefill_verdict'])}, "
                    f"decode/token {_exp(row['decode_exponent'], row['decode_verdict'])}, state {_exp(row['state_exponent'], row['state_verdict'])}")
        return Finding(f"{name}: {row['prefill']} prefill, {row['decode']}, state {row['state']}", measured, "")
    look.__name__ = f"row_{name}"
    return look


def verdicts(session, extras):
    summary = session.summary
    held = f"{summary['held']} of {summary['claims']} hold" if summary["claims"] else read.NOT_MEASURED
    return Finding("claims judged from this lab's measurements", held,
                   "a failing or inconclusive claim is listed on the page with its reason")


LAB = Lab(
    week=15, title="Comparative analysis: the complexity table",
    concept="Training vs inference complexity and memory of every family, measured: the survey's comparison table with exponents.",
    sweeps=(Sweep(NAMES, {"seq_len": SIZES}, ("forward", "decode")),),  # hybrid at its default MEAF: Jamba-like, with claims
    looks=(*(_row(name) for name in NAMES), verdicts),
    timing=False,
)
